"""Today's estimated AWS bill per mode against `daily_budget`, as gauges read at scrape time
(alert CostOverBudget, deploy/prometheus/alerts.yml) and a warning log once a day and mode."""

import asyncio
from datetime import datetime

import asyncpg
from prometheus_client import Gauge

from mgrecs.common.logging import get_logger
from mgrecs.common.prices import prices_from
from mgrecs.common.settings import Settings
from mgrecs.store.cost_report import load_cost_report

log = get_logger(__name__)

TODAY_USD = Gauge(
    "mgrecs_cost_estimate_today_usd",
    "Today's (UTC) estimated AWS bill; self-hosted mode: what AWS would have cost",
    ["mode"],
)
BUDGET_USD = Gauge("mgrecs_cost_daily_budget_usd", "MGRECS_DAILY_BUDGET (0: no budget)")
QUERY_TIMEOUT_SECONDS = 2.0
MODES = ("aws", "self-hosted")
_warned: set[tuple[str, str]] = set()


async def refresh_cost_gauges(pool: asyncpg.Pool, settings: Settings, now: datetime) -> None:
    """Set the gauges from today's usage rows; a database that does not answer leaves them."""
    BUDGET_USD.set(settings.daily_budget)
    today = now.date()
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_SECONDS):
            found = await load_cost_report(
                pool, prices_from(settings), settings.daily_budget, today, today, now
            )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return
    estimates = dict.fromkeys(MODES, 0.0)  # a mode with no row today has no bill yet
    for day in found.days:
        estimates[day.mode] = day.aws_usd
        if day.over_budget and (day.period, day.mode) not in _warned:
            _warned.add((day.period, day.mode))
            log.warning(
                "cost_over_budget",
                mode=day.mode,
                day=day.period,
                estimate_usd=round(day.aws_usd, 2),
                budget_usd=settings.daily_budget,
            )
    for mode, usd in estimates.items():
        TODAY_USD.labels(mode).set(usd)
