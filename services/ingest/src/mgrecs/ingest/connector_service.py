"""`mgrecs-connector`: the pull connector as a long-lived service (docs/connector.md).

Every replica waits for the puller lock (leadership); the one holding it follows the company
API, the others are standbys that take over when it goes. Each serves `/healthz`, `/readyz`
and `/metrics` on `connector_metrics_port`. SIGTERM lets the page being published finish
(its watermark saved), gives the lock back and exits.
"""

import asyncio
import time

import asyncpg

from mgrecs.common.db import create_pool
from mgrecs.common.logging import configure_logging, get_logger
from mgrecs.common.probes import Check, serving_probes
from mgrecs.common.settings import Settings, get_settings
from mgrecs.common.signals import stop_on_signals
from mgrecs.common.startup_secrets import require_secrets
from mgrecs.common.usage import mode_of
from mgrecs.ingest.connector import CONNECTOR_POOL_SIZE, OrderConnector
from mgrecs.ingest.identity import open_resolver
from mgrecs.ingest.leadership import PullerLock
from mgrecs.ingest.mapping import FieldMapping, MappingError, load_mapping
from mgrecs.ingest.metrics import CONNECTOR_LEADER, CONNECTOR_SYNC_ERRORS
from mgrecs.ingest.publisher import OrderPublisher
from mgrecs.store.health import ping
from mgrecs.store.usage import metering

log = get_logger(__name__)
STOP_GRACE_SECONDS = 20.0
"""How long a stop waits for the page being published before cutting it off (within
Kubernetes' 30 s termination grace)."""
MIN_STALE_SECONDS = 60.0


def stale_after(settings: Settings) -> float:
    """A leader with no successful page or pass for this long is not ready."""
    return max(3 * settings.connector_poll_seconds, MIN_STALE_SECONDS)


class ConnectorService:
    """One replica: a standby until it holds the puller lock, then the puller."""

    def __init__(self, settings: Settings, mapping: FieldMapping) -> None:
        self.settings = settings
        self.mapping = mapping
        self.lock = PullerLock(settings)
        self._stopping = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._puller: OrderConnector | None = None
        """The connector while this replica leads."""

    def checks(self) -> dict[str, Check]:
        """`/readyz`: the database answers, and this replica is a standby able to take over
        or a leader whose last pull succeeded lately."""
        return {"database": self._database, "puller": self._pulling}

    async def _database(self) -> str:
        if self._pool is None:
            return "starting"
        await ping(self._pool)
        return "ok"

    async def _pulling(self) -> str:
        puller = self._puller
        if puller is None:
            return "ok"  # a standby: nothing to pull until the leader goes
        if puller.failure is not None:
            return f"last pass failed: {puller.failure}"
        idle = time.time() - puller.last_success
        if idle > stale_after(self.settings):
            return f"no successful pull for {idle:.0f} s"
        return "ok"

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Stand by, lead while holding the lock, stand by again if it is lost; until stop."""
        CONNECTOR_LEADER.set(0)
        self._pool = await create_pool(self.settings.database_url, max_size=CONNECTOR_POOL_SIZE)
        publisher = OrderPublisher(self.settings)
        try:
            async with open_resolver(self.settings) as resolver:
                while await self.lock.acquire(self._stopping):
                    puller = OrderConnector(
                        self.settings, self.mapping, self._pool, publisher, resolver
                    )
                    await self._lead(puller)
        finally:
            await publisher.close()
            await self._pool.close()
            log.info("connector_stopped", source=self.settings.connector_source)

    async def _lead(self, puller: OrderConnector) -> None:
        """Follow the API until stopped or the lock is lost; then give the lock back."""
        self._puller = puller
        CONNECTOR_LEADER.set(1)
        following = asyncio.create_task(puller.follow(self._stopping))
        lost = asyncio.create_task(self.lock.watch())
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({following, lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if lost.done() and not following.done():
                CONNECTOR_SYNC_ERRORS.labels("lock").inc()
                log.error("connector_lock_lost", error=lost.result())
                following.cancel()
            elif stopped.done():
                await asyncio.wait({following}, timeout=STOP_GRACE_SECONDS)
                following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            if not following.cancelled():
                following.result()  # re-raise what `follow` does not survive: the process ends
        finally:
            self._puller = None
            CONNECTOR_LEADER.set(0)
            for task in (lost, stopped, following):
                task.cancel()
            await asyncio.gather(lost, stopped, following, return_exceptions=True)
            await puller.aclose()
            await self.lock.release()


async def run_connector(settings: Settings) -> None:
    """`mgrecs-connector` (and `mgrecs sync --follow`): validate the mapping, then run as a
    replica until SIGTERM/SIGINT, serving the probes on the connector metrics port."""
    mapping = load_mapping(settings.connector_mapping_file)  # refuse a bad file up front
    service = ConnectorService(settings, mapping)
    with stop_on_signals(service.stop):
        async with (
            serving_probes(settings.host, settings.connector_metrics_port, service.checks()),
            metering(settings, mode_of(settings), "connector"),
        ):
            await service.run()


def require_connector_secrets(settings: Settings, service: str) -> None:
    """The company API's token, unless it takes none (and the Kafka password with SASL)."""
    token = ["connector_token"] if settings.connector_auth != "none" else []
    require_secrets(settings, *token, service=service)


def main() -> None:
    settings = get_settings()
    require_connector_secrets(settings, "mgrecs-connector")
    configure_logging(settings.log_level, settings.log_json)
    try:
        asyncio.run(run_connector(settings))
    except MappingError as exc:
        raise SystemExit(f"mgrecs-connector: {exc}") from exc


if __name__ == "__main__":
    main()
