"""`mgrecs-connector` as deployed: two replicas as real processes against the fake company
API, the test's PostgreSQL and broker. One pulls, the other stands by; when the leader is
killed the standby takes over from the watermark, and every order reaches `orders` once.
Then the readiness of each role, in process."""

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess
from mgrecs.common import topics
from mgrecs.common.probes import Check
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.connector_service import ConnectorService
from mgrecs.ingest.fake_company_api import FakeCompanyApi, create_fake_api, generate_orders
from mgrecs.ingest.mapping import load_mapping
from mgrecs.store.locks import connector_lock, lock_holder, try_lock, unlock
from mgrecs.store.watermarks import Position, load_watermark
from support.helpers import eventually, read_topic, serve
from support.paths import REPO_ROOT

MAPPING_FILE = REPO_ROOT / "deploy" / "company-api-mapping.json"
FIRST, LATER = 60, 25


def _position(order: dict) -> Position:  # type: ignore[type-arg]
    return Position(datetime.fromisoformat(order["updated_at"]), order["id"])


@pytest.fixture
def orders() -> list[dict]:  # type: ignore[type-arg]
    """Sorted by (updated_at, id): the later ones come after every earlier watermark."""
    return sorted(generate_orders(FIRST + LATER, seed=5), key=_position)


@pytest.fixture
async def api(orders: list[dict]) -> AsyncIterator[tuple[FakeCompanyApi, str]]:  # type: ignore[type-arg]
    fake = FakeCompanyApi(orders[:FIRST])
    async with serve(create_fake_api(fake), free_port()) as url:
        yield fake, url


class Replica:
    """One `mgrecs-connector` process and its probes' address."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        env = {**env, "MGRECS_CONNECTOR_METRICS_PORT": str(self.port)}
        self.process = ServiceProcess(name, ["mgrecs-connector"], env, logs / f"{name}.log")
        self.url = f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return await client.get(f"{self.url}{path}")
        except httpx.HTTPError:
            return None

    async def metric(self, name: str) -> float | None:
        """A sample's value (summed over its labels), None when the replica has none."""
        response = await self.get("/metrics")
        assert response is not None, self.process.log_tail()
        values = [
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == name
        ]
        return sum(values) if values else None

    async def ready(self) -> bool:
        response = await self.get("/readyz")
        return response is not None and response.status_code == 200


@pytest.fixture
def replicas(
    settings: Settings, api: tuple[FakeCompanyApi, str], tmp_path: Path
) -> Iterator[list[Replica]]:
    fake, url = api
    env = {
        "MGRECS_DATABASE_URL": settings.database_url,
        "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
        "MGRECS_CONNECTOR_BASE_URL": url,
        "MGRECS_CONNECTOR_TOKEN": fake.token,
        "MGRECS_CONNECTOR_PAGE_SIZE": "10",
        "MGRECS_CONNECTOR_POLL_SECONDS": "0.5",
        "MGRECS_CONNECTOR_REQUESTS_PER_SECOND": "0",
        "MGRECS_CONNECTOR_LOCK_RETRY_SECONDS": "0.3",
        "MGRECS_CONNECTOR_MAPPING_FILE": str(MAPPING_FILE),
        "MGRECS_LOG_JSON": "false",
    }
    started = [Replica(name, env, tmp_path) for name in ("first", "second")]
    yield started
    for replica in started:
        replica.process.terminate()
    for replica in started:
        replica.process.wait(timeout=30)


async def published(settings: Settings) -> Counter[str]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS, settings))
    return Counter(OrderEvent.model_validate_json(r.value).order_id for r in records)


async def test_one_replica_pulls_and_the_standby_takes_over_when_it_dies(
    settings: Settings,
    pool: asyncpg.Pool,
    api: tuple[FakeCompanyApi, str],
    orders: list[dict],  # type: ignore[type-arg]
    replicas: list[Replica],
) -> None:
    fake, _ = api
    first, second = replicas
    source = settings.connector_source
    first.process.start()
    await eventually(lambda: _leader(first))
    second.process.start()
    await eventually(second.ready)  # a standby is ready: it can take over
    await eventually(first.ready)
    await eventually(lambda: _at(pool, source, orders[FIRST - 1]))

    # One puller: the standby never asked the API, and published nothing.
    await asyncio.sleep(1.5)  # a few polls of the leader, a few lock tries of the standby
    assert await first.metric("mgrecs_connector_leader") == 1
    assert await second.metric("mgrecs_connector_leader") == 0
    assert await second.metric("mgrecs_connector_requests_total") is None
    assert await first.metric("mgrecs_connector_records_total") == FIRST
    reads = fake.requests
    assert reads >= 3  # the leader keeps polling

    # Kill the leader (no goodbye): its session ends, the lock goes to the standby.
    assert first.process.process is not None
    first.process.process.send_signal(signal.SIGKILL)
    fake.orders.extend(orders[FIRST:])
    await eventually(lambda: _leader(second))
    await eventually(lambda: _at(pool, source, orders[-1]))
    await eventually(second.ready)
    counts = await published(settings)
    assert set(counts) == {order["id"] for order in orders}  # none lost
    assert max(counts.values()) == 1  # none sent twice: the standby resumed at the watermark
    assert await second.metric("mgrecs_connector_records_total") == LATER
    stamp = await second.metric("mgrecs_connector_watermark_timestamp_seconds")
    assert stamp == _position(orders[-1]).updated_at.timestamp()

    # SIGTERM: a graceful exit that gives the lock back.
    second.process.terminate()
    await asyncio.to_thread(second.process.wait, 30)
    assert second.process.process is not None and second.process.process.returncode == 0
    assert await lock_holder(pool, connector_lock(source)) is None
    assert "connector_stopped" in second.process.log_tail(50)


async def _leader(replica: Replica) -> bool:
    if await replica.get("/healthz") is None:
        return False
    return await replica.metric("mgrecs_connector_leader") == 1


async def _at(pool: asyncpg.Pool, source: str, order: dict) -> bool:  # type: ignore[type-arg]
    return await load_watermark(pool, source) == _position(order)


async def test_the_lock_has_one_holder_and_is_freed_with_its_session(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    name = connector_lock(settings.connector_source)
    holder = await asyncpg.connect(settings.database_url)
    other = await asyncpg.connect(settings.database_url)
    try:
        assert await try_lock(holder, name)
        assert not await try_lock(other, name)
        assert await lock_holder(pool, name) == holder.get_server_pid()
        assert not await unlock(other, name)  # only its holder gives it back
        await holder.close()
        await eventually(lambda: _free(pool, name), timeout=10)
        assert await try_lock(other, name)
        assert await try_lock(other, connector_lock("another-source"))  # one lock per source
    finally:
        for connection in (holder, other):
            with contextlib.suppress(Exception):
                await connection.close()


async def _free(pool: asyncpg.Pool, name: str) -> bool:
    return await lock_holder(pool, name) is None


def in_process(
    settings: Settings, fake: FakeCompanyApi, url: str, **extra: object
) -> ConnectorService:
    """A connector service in this process against `fake`, unthrottled, quick to retry."""
    update = {
        "connector_base_url": url,
        "connector_token": fake.token,
        "connector_requests_per_second": 0,
        "connector_poll_seconds": 0.2,
        "connector_lock_retry_seconds": 0.2,
        **extra,
    }
    return ConnectorService(settings.model_copy(update=update), load_mapping(MAPPING_FILE))


async def test_readiness_a_standby_is_ready_a_leader_that_cannot_pull_is_not(
    settings: Settings, pool: asyncpg.Pool, api: tuple[FakeCompanyApi, str]
) -> None:
    fake, url = api
    service = in_process(settings, fake, url, connector_max_attempts=1)
    checks = service.checks()
    name = connector_lock(settings.connector_source)
    other = await asyncpg.connect(settings.database_url)  # another replica leads
    assert await try_lock(other, name)
    fake.faults.fail_next = 10_000
    task = asyncio.create_task(service.run())
    try:
        await eventually(lambda: _says(checks["database"], "ok"))
        assert await checks["puller"]() == "ok"  # a standby: ready to take over
        assert REGISTRY.get_sample_value("mgrecs_connector_leader") == 0
        assert fake.requests == 0

        await other.close()  # the leader goes: this one leads, and its pulls fail
        verdict = await eventually(lambda: _failing(checks["puller"]))
        assert verdict.startswith("last pass failed: api: ")
        assert REGISTRY.get_sample_value("mgrecs_connector_leader") == 1

        fake.faults.fail_next = 0  # the API is back: ready again
        await eventually(lambda: _says(checks["puller"], "ok"))
    finally:
        await service.stop()
        await asyncio.wait_for(task, timeout=30)
    assert REGISTRY.get_sample_value("mgrecs_connector_leader") == 0
    assert await lock_holder(pool, name) is None  # given back on stop


async def _says(check: Check, verdict: str) -> bool:
    return await check() == verdict


async def _failing(check: Check) -> str | None:
    verdict = await check()
    return None if verdict == "ok" else verdict


async def test_a_leader_whose_lock_session_ends_steps_down_and_leads_again(
    settings: Settings, pool: asyncpg.Pool, api: tuple[FakeCompanyApi, str]
) -> None:
    """An administrator's pg_terminate_backend (or a server restart) ends the lock's session:
    the leader stops pulling, counts a `lock` error, and takes the free lock again."""
    fake, url = api
    service = in_process(settings, fake, url)
    name = connector_lock(settings.connector_source)
    lost = {"error": "lock"}
    before = REGISTRY.get_sample_value("mgrecs_connector_sync_errors_total", lost) or 0
    task = asyncio.create_task(service.run())
    try:
        first = await eventually(lambda: lock_holder(pool, name))
        await pool.execute("SELECT pg_terminate_backend($1)", first)
        second = await eventually(lambda: _other_holder(pool, name, first))
        assert second != first
        after = REGISTRY.get_sample_value("mgrecs_connector_sync_errors_total", lost)
        assert after == before + 1
        await eventually(lambda: _gauge("mgrecs_connector_leader", 1))
    finally:
        await service.stop()
        await asyncio.wait_for(task, timeout=30)
    assert await lock_holder(pool, name) is None


async def _other_holder(pool: asyncpg.Pool, name: str, first: int) -> int | None:
    holder = await lock_holder(pool, name)
    return holder if holder not in (None, first) else None


async def _gauge(name: str, value: float) -> bool:
    return REGISTRY.get_sample_value(name) == value
