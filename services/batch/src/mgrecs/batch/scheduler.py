"""`mgrecs-scheduler`: publishes `retrain`, `refresh`, `infer` and `online` ticks on the cron
expressions of the settings (MGRECS_SCHEDULE_*), until SIGTERM/SIGINT.

It needs only the broker, and publishes through the FastStream publisher `channels` declares
for `schedule-ticks` (the AsyncAPI document's). Replicas are safe (each slot's tick id is
fixed, see `schedule`), so a second replica is a standby, not a second run of every job.
"""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from mgrecs.batch.metrics import TICKS_PUBLISHED
from mgrecs.batch.schedule import Schedule, due, next_slot, schedules
from mgrecs.common import channels
from mgrecs.common.consume import answering, make_broker
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.logging import configure_logging, get_logger
from mgrecs.common.probes import serving_probes
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings, get_settings
from mgrecs.common.signals import stop_on_signals
from mgrecs.common.startup_secrets import require_secrets
from mgrecs.store.usage import metering

Clock = Callable[[], datetime]

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Publishes each due tick to `schedule-ticks` (keyed by kind), then sleeps until the next
    slot of any schedule, until `stop()` is called."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.plan: list[Schedule] = schedules(settings)
        self._clock = clock
        self._stopping = asyncio.Event()
        self.broker = make_broker(settings)
        self._ticks = channels.publisher(self.broker, settings, channels.SCHEDULE_TICKS)

    async def ready(self) -> str:
        """`ok` once the broker is connected and answers (for `/readyz`)."""
        return await answering(self.broker)

    async def run(self) -> None:
        await ensure_topics(self.settings)
        await self.broker.start()
        log.info("scheduler_started", schedules={s.kind: s.expression for s in self.plan})
        try:
            since: datetime | None = None
            while not self._stopping.is_set():
                now = self._clock()
                for tick in due(self.plan, now, since):
                    await self._publish(tick)
                since = now
                await self._sleep_until_next(now)
        finally:
            await self.broker.stop()
            log.info("scheduler_stopped")

    async def stop(self) -> None:
        self._stopping.set()

    async def _publish(self, tick: ScheduleTick) -> None:
        await self._ticks.publish(tick.model_dump_json().encode(), key=tick.kind.encode())
        TICKS_PUBLISHED.labels(tick.kind).inc()
        log.info("tick_published", tick_id=tick.tick_id, kind=tick.kind)

    async def _sleep_until_next(self, now: datetime) -> None:
        """Until the next slot of any schedule (or `stop()`; forever with none enabled)."""
        timeout = None
        if self.plan:
            wake = min(next_slot(schedule.expression, now) for schedule in self.plan)
            timeout = max(0.0, (wake - self._clock()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout)


async def serve(settings: Settings) -> None:
    """Run the scheduler, serving `/metrics`, `/healthz` and `/readyz` (the broker) on the
    scheduler metrics port."""
    scheduler = Scheduler(settings)
    with stop_on_signals(scheduler.stop):
        async with (
            serving_probes(
                settings.host, settings.scheduler_metrics_port, {"kafka": scheduler.ready}
            ),
            metering(settings, settings.batch_mode, "scheduler"),
        ):
            await scheduler.run()


def main() -> None:
    settings = get_settings()
    require_secrets(settings, service="mgrecs-scheduler")  # the Kafka password, with SASL
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
