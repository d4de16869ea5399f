"""`GET /v1/reports/cost`: what each mode consumed and its AWS bill (docs/cost.md). An
operator's report: it needs an admin key (`mgrecs.api.guard`)."""

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from mgrecs.api.deps import ClockDep, PoolDep, SettingsDep
from mgrecs.api.schemas.cost import CostReport
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.prices import prices_from
from mgrecs.store.cost_report import load_cost_report

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 31


@router.get(
    "/cost",
    response_model=CostReport,
    responses={422: {"model": ErrorMessage, "description": "bad period"}},
    summary="What each mode consumed, priced as an AWS bill per day and month",
)
async def cost(
    pool: PoolDep,
    settings: SettingsDep,
    clock: ClockDep,
    start: Annotated[
        date | None, Query(description="first UTC day (default: end - 30 days)")
    ] = None,
    end: Annotated[
        date | None, Query(description="last UTC day, included (default: today)")
    ] = None,
) -> CostReport:
    """AWS mode: the estimated bill of its counts; self-hosted mode: what the same traffic
    would have cost on AWS, beside its machine hours. Prices: the `MGRECS_PRICE_*` table."""
    now = clock()
    last = end if end is not None else now.date()
    first = start if start is not None else _days_before(last, DEFAULT_PERIOD_DAYS - 1)
    if first > last:
        raise HTTPException(status_code=422, detail="start: must not be after end")
    if (last - first).days >= MAX_PERIOD_DAYS:
        raise HTTPException(
            status_code=422, detail=f"start: the period is at most {MAX_PERIOD_DAYS} days"
        )
    found = await load_cost_report(
        pool, prices_from(settings), settings.daily_budget, first, last, now
    )
    return CostReport.of(found)


def _days_before(day: date, days: int) -> date:
    """`days` before `day`, or the first day there is."""
    return day - timedelta(days=min(days, (day - date.min).days))
