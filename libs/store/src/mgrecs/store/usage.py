"""`usage_hourly`: what each service consumed, per UTC hour (docs/cost.md).

`metering` is the task every service runs beside its work: every `usage_flush_seconds` it
takes the process meter's counts (and the CPU seconds spent since the last flush) and adds
them to the hour's rows. A failed flush keeps the counts for the next one; a crash loses at
most one interval.
"""

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from mgrecs.common.db import create_pool
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.common.usage import CPU_SECONDS, METER, PEAKS, Meter, Taken

log = get_logger(__name__)

METERING_POOL_SIZE = 1
"""The connection a service without a pool of its own flushes its usage on (opened when
first used, kept)."""

FLUSH_TIMEOUT_SECONDS = 5.0
"""A flush waits no longer for the database (a service stopping while it is away)."""

ADD = """
INSERT INTO usage_hourly (hour, mode, service, metric, campaign, value)
SELECT $1, $2, $3, m, c, v FROM unnest($4::text[], $5::text[], $6::float8[]) AS t(m, c, v)
ON CONFLICT (hour, mode, service, metric, campaign) DO UPDATE SET value =
    CASE WHEN usage_hourly.metric = ANY($7::text[])
         THEN GREATEST(usage_hourly.value, excluded.value)
         ELSE usage_hourly.value + excluded.value END
"""

BETWEEN = """
SELECT hour, mode, service, metric, campaign, value FROM usage_hourly
WHERE hour >= $1 AND hour < $2 ORDER BY hour
"""


@dataclass(frozen=True)
class UsageRow:
    hour: datetime
    mode: str
    service: str
    metric: str
    campaign: str
    value: float


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def add_usage(
    pool: asyncpg.Pool, hour: datetime, mode: str, service: str, taken: Taken
) -> None:
    """Add `taken` to `hour`'s rows of `mode` and `service` (peaks: the greater)."""
    if not taken.counts:
        return
    metrics, campaigns, values = [], [], []
    for (metric, campaign), value in taken.counts.items():
        metrics.append(metric)
        campaigns.append(campaign)
        values.append(value)
    await pool.execute(ADD, hour, mode, service, metrics, campaigns, values, sorted(PEAKS))


async def usage_between(pool: asyncpg.Pool, start: datetime, end: datetime) -> list[UsageRow]:
    """Every row of the hours in [start, end)."""
    return [UsageRow(**dict(r)) for r in await pool.fetch(BETWEEN, start, end)]


def cpu_seconds() -> float:
    """User and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Flusher:
    """Adds one service's counts (and its CPU seconds since the last flush) to the table."""

    def __init__(self, pool: asyncpg.Pool, mode: str, service: str, meter: Meter = METER):
        self.pool, self.mode, self.service, self.meter = pool, mode, service, meter
        self._cpu = cpu_seconds()

    async def flush(self) -> None:
        now_cpu = cpu_seconds()
        self.meter.add(self.service, CPU_SECONDS, now_cpu - self._cpu)
        self._cpu = now_cpu
        taken = self.meter.take(self.service)
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_SECONDS):
                hour = hour_of(datetime.now(UTC))
                await add_usage(self.pool, hour, self.mode, self.service, taken)
        except Exception as exc:  # the database away: keep the counts for the next flush
            self.meter.put_back(self.service, taken)
            log.warning("usage_flush_failed", service=self.service, error=str(exc))

    async def run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.flush()


@contextlib.asynccontextmanager
async def metering(
    settings: Settings, mode: str, service: str, pool: asyncpg.Pool | None = None
) -> AsyncIterator[Flusher]:
    """Flush `service`'s usage every `usage_flush_seconds` while the block runs, and once at
    its end; with no `pool`, one of its own (a single connection, opened lazily)."""
    own = None
    if pool is None:
        pool = own = await create_pool(
            settings.database_url, min_size=0, max_size=METERING_POOL_SIZE
        )
    flusher = Flusher(pool, mode, service)
    task = asyncio.create_task(flusher.run(settings.usage_flush_seconds))
    try:
        yield flusher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await flusher.flush()
        if own is not None:
            await own.close()
