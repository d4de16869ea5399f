"""The cost report (docs/cost.md): `usage_hourly` rows priced per UTC day and month and per
mode. AWS mode's figures are its estimated bill; self-hosted mode's are what the same traffic
would have cost on AWS, beside its own machine hours."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from mgrecs.common import usage
from mgrecs.common.prices import BillLine, Prices, Totals, estimate
from mgrecs.store.usage import UsageRow, usage_between

CALLS = (usage.GET_RECOMMENDATIONS, usage.GET_PERSONALIZED_RANKING)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Period:
    """One mode's day (`2026-12-07`) or month (`2026-12`)."""

    period: str
    mode: str
    counts: dict[str, float]
    """Every metric summed over services and campaigns (peaks: the greatest)."""
    peak_tps: dict[str, float]
    """Per campaign, its busiest second."""
    cpu_seconds: dict[str, float]
    """Per service (self-hosted mode's own cost)."""
    totals: Totals
    lines: list[BillLine]
    aws_usd: float
    machine_hours: float
    machine_usd: float
    over_budget: bool = False


@dataclass(frozen=True)
class CostReport:
    prices: Prices
    daily_budget: float
    days: list[Period] = field(default_factory=list)
    months: list[Period] = field(default_factory=list)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _hours(day: date, now: datetime) -> int:
    """The day's hours begun by `now`."""
    start = day_start(day)
    return sum(1 for h in range(24) if start + HOUR * h <= now)


def _tps_hours(rows: list[UsageRow], campaigns: set[str], hours: int, min_tps: float) -> float:
    """Per campaign and hour begun, the greater of `min_tps` and the hour's busiest 5-minute
    average (an hour with no call bills `min_tps`: the campaign is provisioned)."""
    busiest: dict[tuple[datetime, str], float] = {}
    for row in rows:
        if row.metric == usage.PEAK_TPS_5MIN:
            key = (row.hour, row.campaign)
            busiest[key] = max(busiest.get(key, 0.0), row.value)
    quiet = len(campaigns) * hours - len(busiest)
    return max(quiet, 0) * min_tps + sum(max(min_tps, v) for v in busiest.values())


def _period(
    name: str,
    mode: str,
    rows: list[UsageRow],
    totals: Totals,
    hours: int,
    prices: Prices,
    budget: float,
) -> Period:
    counts: dict[str, float] = defaultdict(float)
    peak_tps: dict[str, float] = {}
    cpu: dict[str, float] = defaultdict(float)
    for row in rows:
        if row.metric in usage.PEAKS:
            counts[row.metric] = max(counts[row.metric], row.value)
        else:
            counts[row.metric] += row.value
        if row.metric == usage.PEAK_TPS:
            peak_tps[row.campaign] = max(peak_tps.get(row.campaign, 0.0), row.value)
        if row.metric == usage.CPU_SECONDS:
            cpu[row.service] += row.value
    lines = estimate(totals, prices)
    aws_usd = sum(line.usd for line in lines)
    machine_hours = float(hours) if mode == "self-hosted" else 0.0
    return Period(
        period=name,
        mode=mode,
        counts=dict(counts),
        peak_tps=peak_tps,
        cpu_seconds=dict(cpu),
        totals=totals,
        lines=lines,
        aws_usd=aws_usd,
        machine_hours=machine_hours,
        machine_usd=machine_hours * prices.machine_hour,
        # A budget is what AWS mode pays; self-hosted mode's estimate is what it would.
        over_budget=mode == "aws" and len(name) == 10 and 0 < budget < aws_usd,
    )


def _totals(rows: list[UsageRow], tps_hours: float) -> Totals:
    sums: dict[str, float] = defaultdict(float)
    for row in rows:
        sums[row.metric] += row.value
    return Totals(
        events=sums[usage.EVENTS],
        dataset_bytes=sums[usage.DATASET_BYTES],
        training_hours=sums[usage.TRAINING_HOURS],
        tps_hours=tps_hours,
        batch_inputs=sums[usage.BATCH_INPUTS],
        stored_bytes=sums[usage.STORED_BYTES],
    )


def _add(a: Totals, b: Totals) -> Totals:
    return Totals(
        events=a.events + b.events,
        dataset_bytes=a.dataset_bytes + b.dataset_bytes,
        training_hours=a.training_hours + b.training_hours,
        tps_hours=a.tps_hours + b.tps_hours,
        batch_inputs=a.batch_inputs + b.batch_inputs,
        stored_bytes=a.stored_bytes + b.stored_bytes,
    )


def cost_report(
    rows: list[UsageRow], prices: Prices, daily_budget: float, now: datetime
) -> CostReport:
    """Each mode's days (those with rows) and months, priced; the months' tiers apply to
    the month's totals (within the rows given)."""
    by_day: dict[tuple[str, date], list[UsageRow]] = defaultdict(list)
    campaigns: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_day[(row.mode, row.hour.astimezone(UTC).date())].append(row)
        if row.metric in CALLS and row.campaign:
            campaigns[row.mode].add(row.campaign)
    report = CostReport(prices, daily_budget)
    by_month: dict[tuple[str, str], list[tuple[list[UsageRow], Totals, int]]] = defaultdict(list)
    for (mode, day), day_rows in sorted(by_day.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hours = _hours(day, now)
        tps = _tps_hours(day_rows, campaigns[mode], hours, prices.min_provisioned_tps)
        totals = _totals(day_rows, tps)
        report.days.append(
            _period(day.isoformat(), mode, day_rows, totals, hours, prices, daily_budget)
        )
        by_month[(mode, day.isoformat()[:7])].append((day_rows, totals, hours))
    for (mode, month), days in sorted(by_month.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        month_rows = [row for day_rows, _, _ in days for row in day_rows]
        totals = Totals()
        for _, day_totals, _ in days:
            totals = _add(totals, day_totals)
        hours = sum(h for _, _, h in days)
        report.months.append(_period(month, mode, month_rows, totals, hours, prices, 0.0))
    return report


async def load_cost_report(
    pool: asyncpg.Pool,
    prices: Prices,
    daily_budget: float,
    first: date,
    last: date,
    now: datetime,
) -> CostReport:
    """The report of the UTC days `first` to `last`, both included."""
    after = (
        day_start(last + timedelta(days=1)) if last < date.max else datetime.max.replace(tzinfo=UTC)
    )
    rows = await usage_between(pool, day_start(first), after)
    return cost_report(rows, prices, daily_budget, now)
