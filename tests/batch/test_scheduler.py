"""The tick scheduler: slots of the cron expressions on a fake clock (pure), and on the real
broker, one job per slot however often the slot is published (restart, second replica)."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from mgrecs.batch.schedule import (
    InvalidSchedule,
    Schedule,
    due,
    latest_slot,
    next_slot,
    schedules,
    slot_tick,
)
from mgrecs.batch.scheduler import Scheduler
from mgrecs.batch.worker import BatchWorker
from mgrecs.common import topics
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings
from support.helpers import eventually, read_topic, running
from support.shop import insert_shop
from support.ticks import finished, publish, tick

SUNDAY_3AM = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
DEFAULTS = [
    Schedule("retrain", "0 3 * * 0"),
    Schedule("refresh", "0 4 * * *"),
    Schedule("infer", "0 */6 * * *"),
    Schedule("online", "30 5 * * *"),
]


def test_the_defaults_are_weekly_daily_and_six_hourly() -> None:
    assert schedules(Settings()) == DEFAULTS


def test_an_empty_expression_disables_its_tick_and_a_bad_one_is_refused() -> None:
    assert (
        schedules(Settings(schedule_refresh="", schedule_infer=" ", schedule_online=""))
        == DEFAULTS[:1]
    )
    with pytest.raises(InvalidSchedule, match="MGRECS_SCHEDULE_INFER='every hour'"):
        schedules(Settings(schedule_infer="every hour"))


@pytest.mark.parametrize(
    ("now", "latest"),
    [
        (SUNDAY_3AM, SUNDAY_3AM),  # a slot is due at its own minute
        (SUNDAY_3AM + timedelta(seconds=59), SUNDAY_3AM),
        (SUNDAY_3AM - timedelta(seconds=1), SUNDAY_3AM - timedelta(days=7)),
        (SUNDAY_3AM + timedelta(days=6), SUNDAY_3AM),
    ],
)
def test_latest_slot(now: datetime, latest: datetime) -> None:
    assert latest_slot("0 3 * * 0", now) == latest


def test_next_slot_is_strictly_after_now() -> None:
    assert next_slot("0 */6 * * *", SUNDAY_3AM) == SUNDAY_3AM + timedelta(hours=3)
    six = SUNDAY_3AM + timedelta(hours=3)
    assert next_slot("0 */6 * * *", six) == six + timedelta(hours=6)


def test_tick_ids_are_the_kind_and_the_slot() -> None:
    first, again = slot_tick("retrain", SUNDAY_3AM), slot_tick("retrain", SUNDAY_3AM)
    assert first.tick_id == again.tick_id == "retrain-2026-11-29T03:00:00+00:00"
    assert first.requested_at == SUNDAY_3AM
    assert slot_tick("infer", SUNDAY_3AM).tick_id != first.tick_id


def test_on_start_each_schedules_latest_slot_is_due() -> None:
    """Started Sunday 05:10: the missed retrain (03:00), refresh (04:00), infer (00:00) and
    online (Saturday 05:30) are caught up once each; nothing older is replayed."""
    now = SUNDAY_3AM + timedelta(hours=2, minutes=10)
    assert [t.tick_id for t in due(DEFAULTS, now, since=None)] == [
        "retrain-2026-11-29T03:00:00+00:00",
        "refresh-2026-11-29T04:00:00+00:00",
        "infer-2026-11-29T00:00:00+00:00",
        "online-2026-11-28T05:30:00+00:00",
    ]


def test_later_checks_publish_only_slots_reached_since_the_last_one() -> None:
    start = SUNDAY_3AM + timedelta(minutes=30)
    assert due(DEFAULTS, start + timedelta(minutes=20), since=start) == []
    at_four = due(DEFAULTS, SUNDAY_3AM + timedelta(hours=1), since=start)
    assert [t.tick_id for t in at_four] == ["refresh-2026-11-29T04:00:00+00:00"]
    # Asleep through two infer slots (06:00, 12:00): only the latest is published.
    late = due(DEFAULTS[2:3], SUNDAY_3AM + timedelta(hours=10), since=start)
    assert [t.tick_id for t in late] == ["infer-2026-11-29T12:00:00+00:00"]


async def published(settings: Settings) -> list[ScheduleTick]:
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, settings)
    )
    return [ScheduleTick.model_validate_json(record.value) for record in records]


async def test_a_slot_published_twice_runs_its_job_once(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_shop(pool, products=6)
    settings.schedule_refresh = settings.schedule_infer = settings.schedule_online = ""
    clock = SUNDAY_3AM + timedelta(seconds=20)
    slot_id = "retrain-2026-11-29T03:00:00+00:00"

    # The scheduler starts, publishes the due slot, and is restarted (or a replica starts).
    for count in (1, 2):
        async with running(Scheduler(settings, clock=lambda: clock)):
            ticks = await eventually(lambda count=count: _at_least(settings, count), timeout=30)
    assert [(t.tick_id, t.kind, t.requested_at) for t in ticks] == [
        (slot_id, "retrain", SUNDAY_3AM)
    ] * 2

    marker, marker_bytes = tick("infer")
    await publish(settings, marker_bytes)
    async with running(BatchWorker(settings)):
        await eventually(lambda: finished(pool, marker.tick_id), timeout=60)
    assert (await finished(pool, slot_id) or {}).get("status") == "ok"
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 1
    assert await pool.fetchval("SELECT count(*) FROM processed_ticks") == 2


async def _at_least(settings: Settings, count: int) -> list[ScheduleTick] | None:
    ticks = await published(settings)
    return ticks if len(ticks) >= count else None


async def test_the_scheduler_stops_promptly_while_waiting(settings: Settings) -> None:
    scheduler = Scheduler(settings)
    task = asyncio.create_task(scheduler.run())
    await eventually(lambda: _at_least(settings, 4), timeout=30)
    await scheduler.stop()
    await asyncio.wait_for(task, timeout=5)
    kinds = {t.kind for t in await published(settings)}
    assert kinds == {"retrain", "refresh", "infer", "online"}


async def test_the_scheduler_is_ready_only_while_connected(settings: Settings) -> None:
    scheduler = Scheduler(settings)
    assert await scheduler.ready() == "not connected yet"
    task = asyncio.create_task(scheduler.run())
    assert await eventually(lambda: _ready(scheduler), timeout=30)
    await scheduler.stop()
    await asyncio.wait_for(task, timeout=5)
    assert await scheduler.ready() == "not connected yet"


async def _ready(scheduler: Scheduler) -> bool:
    return await scheduler.ready() == "ok"
