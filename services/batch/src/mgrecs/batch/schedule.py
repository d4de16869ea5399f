"""When ticks are due: cron expressions (5 fields, UTC) -> slots -> ticks with one id per slot.

A tick's id is its kind and slot (`retrain-2026-11-29T03:00:00+00:00`), so every publication
of one slot - by two scheduler replicas, or again after a restart - is one job: the batch
worker's ledger runs a tick id once. Pure functions of the time they are given.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from mgrecs.common.schemas import ScheduleTick, TickKind
from mgrecs.common.settings import Settings


class InvalidSchedule(ValueError):
    """A schedule setting is not a cron expression (the scheduler refuses to start)."""


@dataclass(frozen=True)
class Schedule:
    kind: TickKind
    expression: str


def schedules(settings: Settings) -> list[Schedule]:
    """The enabled schedules (an empty expression disables its tick), each one checked."""
    configured: dict[TickKind, str] = {
        "retrain": settings.schedule_retrain,
        "refresh": settings.schedule_refresh,
        "infer": settings.schedule_infer,
        "online": settings.schedule_online,
    }
    enabled = []
    for kind, expression in configured.items():
        if not expression.strip():
            continue
        try:
            CronSim(expression, datetime.now(UTC))
        except CronSimError as error:
            raise InvalidSchedule(
                f"MGRECS_SCHEDULE_{kind.upper()}={expression!r}: {error}"
            ) from error
        enabled.append(Schedule(kind, expression.strip()))
    return enabled


def latest_slot(expression: str, now: datetime) -> datetime:
    """The most recent slot at or before `now` (slots fall on whole minutes)."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return next(CronSim(expression, minute + timedelta(seconds=1), reverse=True))


def next_slot(expression: str, now: datetime) -> datetime:
    """The first slot strictly after `now`."""
    return next(CronSim(expression, now.astimezone(UTC)))


def slot_tick(kind: TickKind, slot: datetime) -> ScheduleTick:
    """The tick of one slot: its id is the same whoever publishes it, whenever."""
    return ScheduleTick(tick_id=f"{kind}-{slot.isoformat()}", kind=kind, requested_at=slot)


def due(plan: list[Schedule], now: datetime, since: datetime | None) -> list[ScheduleTick]:
    """For each schedule, the tick of its latest slot at or before `now` if that slot is after
    `since` (the previous check). On start (`since` None) that is every schedule's latest
    slot: one missed while nothing ran is caught up, older ones are not replayed, and one
    that already ran is a no-op at the worker."""
    ticks = []
    for schedule in plan:
        slot = latest_slot(schedule.expression, now)
        if since is None or slot > since:
            ticks.append(slot_tick(schedule.kind, slot))
    return ticks
