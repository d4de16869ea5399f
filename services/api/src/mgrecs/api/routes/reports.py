"""`GET /v1/reports/impact`: what recommendations earned in a period (docs/concepts.md,
Impact). An operator's report: it needs an admin key (`mgrecs.api.guard`)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from mgrecs.api.deps import ClockDep, RepositoryDep, SettingsDep
from mgrecs.api.schemas.reports import ImpactReport
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.store.impact import Dimension, parse_dimensions

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 7


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def dimensions(value: str) -> list[Dimension]:
    """`group_by` parsed (`mgrecs.store.impact.parse_dimensions`); HTTPException 422."""
    try:
        return parse_dimensions(value)
    except ValueError as error:
        raise unprocessable(f"group_by: {error}") from error


GroupBy = Annotated[
    str,
    Query(
        max_length=100,
        description="model_version, source, arm, region, category or day; or two of them "
        "separated by a comma (model_version,day: a time series per version)",
        examples=["model_version,day"],
    ),
]


@router.get(
    "/impact",
    response_model=ImpactReport,
    responses={422: {"model": ErrorMessage, "description": "bad period or group_by"}},
    summary="Revenue, orders and items attributed to recommendations, against the baseline",
)
async def impact(
    repository: RepositoryDep,
    settings: SettingsDep,
    clock: ClockDep,
    start: Annotated[
        datetime | None, Query(description="first instant (default: end - 7 days)")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="instant after the period (default: now)")
    ] = None,
    group_by: GroupBy = "model_version",
) -> ImpactReport:
    """Placed order lines of [start, end): influenced when the customer was served the
    product within `attribution_window_days` before ordering, attributed to the latest such
    answer. With the baseline (lines not influenced), the uplift of being shown a product
    and, per experiment arm, revenue per customer against the holdout arm."""
    grouped = dimensions(group_by)
    until = _utc(end, "end") if end is not None else clock()
    since = _utc(start, "start") if start is not None else _days_before(until, DEFAULT_PERIOD_DAYS)
    if since >= until:
        raise unprocessable("start: must be before end")
    if until - since > timedelta(days=MAX_PERIOD_DAYS):
        raise unprocessable(f"start: the period is at most {MAX_PERIOD_DAYS} days")
    found = await repository.impact(
        since,
        until,
        settings.attribution_window_days,
        grouped,
        settings.impact_holdout_arm,
    )
    return ImpactReport.of(found)


EARLIEST = datetime.min.replace(tzinfo=UTC)


def _utc(moment: datetime, name: str) -> datetime:
    """`moment` in UTC (a time without a zone is UTC); 422 when UTC has no such time (the
    first or last hours of years 1 and 9999 with an offset)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise unprocessable(f"{name}: out of range once in UTC (years 1 to 9999)") from error


def _days_before(moment: datetime, days: int) -> datetime:
    """`days` before `moment`, or the earliest time there is."""
    return moment - min(timedelta(days=days), moment - EARLIEST)
