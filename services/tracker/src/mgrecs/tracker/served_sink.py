"""The served sink: what the api answered (topic `served`) into `served`, a partition per day.

Same contract as the orders' database sink: the batch is written before its offsets are
committed, a replay is a no-op (`served_id` and `served_at` are the key), and a message that
is not a valid `ServedList` goes to `served.dlq` with the reason. Retention runs here too: at
the start and every `RETENTION_EVERY_SECONDS`, the day partitions older than
`served_retention_days` are dropped (`mgrecs.store.served.drop_before`), and logged.
"""

import asyncio
import contextlib
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta

from mgrecs.common import channels
from mgrecs.common.served import ServedList
from mgrecs.store.served import drop_before, write_served
from mgrecs.tracker.db_sink import PostgresSink
from mgrecs.tracker.metrics import SERVED_PARTITIONS_DROPPED

RETENTION_EVERY_SECONDS = 3600.0
"""How often retention runs (it drops whole days: an hour late costs nothing)."""


class ServedSink(PostgresSink[ServedList]):
    """Consumer group `mgrecs-tracker-served`: served lists into PostgreSQL, poison to
    `served.dlq`; old days dropped."""

    sink = "served"
    channel = channels.TRACKER_SERVED
    group = channel.group
    message = ServedList

    async def open(self, stack: AsyncExitStack) -> None:
        await super().open(stack)
        retention = asyncio.create_task(self._retention())

        async def stop_retention() -> None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention

        stack.push_async_callback(stop_retention)

    async def write(self, messages: list[ServedList]) -> None:
        await write_served(self._pool, messages)

    def cutoff(self, today: date | None = None) -> date:
        """The first day kept: `served_retention_days` days back from today (UTC)."""
        today = today or datetime.now(UTC).date()
        return today - timedelta(days=self.settings.served_retention_days)

    async def apply_retention(self, today: date | None = None) -> list[str]:
        """Drop the days before the cutoff; the partitions dropped."""
        cutoff = self.cutoff(today)
        dropped = await drop_before(self._pool, cutoff)
        SERVED_PARTITIONS_DROPPED.labels(self.sink).inc(len(dropped))
        self.log.info("served_retention", before=cutoff.isoformat(), dropped=dropped)
        return dropped

    async def _retention(self) -> None:
        """`apply_retention` now and every `RETENTION_EVERY_SECONDS`; a database that is
        down (or any failure) makes it wait for the next turn (logged), never stops the sink."""
        while True:
            try:
                await self.apply_retention()
            except Exception as exc:  # noqa: BLE001 - retention never stops the sink
                self.log.warning("served_retention_failed", error=repr(exc))
            await asyncio.sleep(RETENTION_EVERY_SECONDS)
