"""The impact report: attributed revenue, orders and items per group next to the baseline,
the uplift of being shown a product with its 95 % interval, and the holdout comparison.

Shared by the api (`GET /v1/reports/impact`), the CLI (`mgrecs impact`) and the batch (the
`mgrecs_attributed_*` gauges). Definitions: docs/concepts.md, Impact.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist

import asyncpg

from mgrecs.store import impact
from mgrecs.store.impact import CustomerRates, Dimension

Z95 = NormalDist().inv_cdf(0.975)
NOT_SERVED = "(not served)"
"""The group key of baseline lines under model_version, source or arm (they have none)."""


@dataclass(frozen=True)
class Measures:
    revenue: float = 0.0
    orders: int = 0
    items: int = 0
    customers: int = 0


@dataclass(frozen=True)
class Group:
    """One group: its attributed (influenced) lines and its baseline (not influenced)."""

    key: dict[str, str | None]
    attributed: Measures
    baseline: Measures

    @property
    def attributed_share(self) -> float | None:
        total = self.attributed.revenue + self.baseline.revenue
        return None if total <= 0 else self.attributed.revenue / total


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval (normal approximation) over `n` units."""

    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Uplift:
    """Among customers served in the period: the rate at which they bought the products
    they were shown minus the rate at which they bought the other products of the catalogue
    (per product, averaged over customers), with its interval over customers."""

    shown_rate: float
    other_rate: float
    difference: Estimate


@dataclass(frozen=True)
class ArmComparison:
    """An experiment arm's revenue per customer, and its difference from the holdout's."""

    experiment_id: str
    arm: str
    customers: int
    revenue_per_customer: Estimate | None
    versus_holdout: Estimate | None


@dataclass(frozen=True)
class ImpactReport:
    start: datetime
    end: datetime
    window_days: float
    group_by: list[str]
    groups: list[Group]
    total: Group
    uplift: Uplift | None
    arms: list[ArmComparison] = field(default_factory=list)


def mean_estimate(values: Sequence[float]) -> Estimate | None:
    """The mean with mean ± z·s/√n; None without values."""
    n = len(values)
    if n == 0:
        return None
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = Z95 * math.sqrt(variance / n)
    return Estimate(mean, mean - half, mean + half, n)


def uplift(rates: Sequence[CustomerRates], catalogue: int) -> Uplift | None:
    """Per customer: bought_shown / shown - bought_other / (catalogue - shown); the mean
    over customers with the normal interval. None without served customers."""
    shown_rates: list[float] = []
    other_rates: list[float] = []
    for customer in rates:
        if customer.shown <= 0:
            continue
        others = max(catalogue - customer.shown, 1)
        shown_rates.append(customer.bought_shown / customer.shown)
        other_rates.append(min(customer.bought_other / others, 1.0))
    difference = mean_estimate([s - o for s, o in zip(shown_rates, other_rates, strict=True)])
    if difference is None:
        return None
    n = len(shown_rates)
    return Uplift(math.fsum(shown_rates) / n, math.fsum(other_rates) / n, difference)


def _arm_estimate(spend: impact.ArmSpend) -> tuple[Estimate | None, float]:
    """Revenue per customer (mean over the arm's customers, 0 for those who bought nothing)
    and its variance of the mean."""
    n = spend.customers
    if n <= 0:
        return None, 0.0
    mean = spend.revenue / n
    variance = max(spend.revenue_squares - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    half = Z95 * math.sqrt(variance / n)
    return Estimate(mean, mean - half, mean + half, n), variance / n


def arm_comparisons(spends: Sequence[impact.ArmSpend], holdout_arm: str) -> list[ArmComparison]:
    """Every arm; those of an experiment with a `holdout_arm` get their difference from it
    (difference of means, variances added)."""
    estimates = {(s.experiment_id, s.arm): _arm_estimate(s) for s in spends}
    compared = []
    for spend in spends:
        estimate, variance = estimates[(spend.experiment_id, spend.arm)]
        held, held_variance = estimates.get((spend.experiment_id, holdout_arm), (None, 0.0))
        versus = None
        if estimate is not None and held is not None and spend.arm != holdout_arm:
            diff = estimate.value - held.value
            half = Z95 * math.sqrt(variance + held_variance)
            versus = Estimate(diff, diff - half, diff + half, estimate.n + held.n)
        compared.append(
            ArmComparison(spend.experiment_id, spend.arm, spend.customers, estimate, versus)
        )
    return compared


def _assemble(totals: Sequence[impact.GroupTotals], group_by: Sequence[str]) -> list[Group]:
    """One Group per key, attributed and baseline side by side."""
    by_key: dict[tuple[str | None, ...], dict[bool, Measures]] = {}
    for row in totals:
        if row.total:
            continue
        key = tuple(
            NOT_SERVED
            if value is None and not row.influenced and name in ("model_version", "source", "arm")
            else value
            for name, value in zip(group_by, row.key, strict=True)
        )
        by_key.setdefault(key, {})[row.influenced] = _measures(row)
    return [
        Group(
            dict(zip(group_by, key, strict=True)),
            measures.get(True, Measures()),
            measures.get(False, Measures()),
        )
        for key, measures in by_key.items()
    ]


def _measures(row: impact.GroupTotals) -> Measures:
    return Measures(row.revenue, row.orders, row.items, row.customers)


def _total(totals: Sequence[impact.GroupTotals]) -> Group:
    """The totals rows, attributed and baseline (exact distinct counts)."""
    found = {row.influenced: _measures(row) for row in totals if row.total}
    return Group({}, found.get(True, Measures()), found.get(False, Measures()))


async def impact_report(
    pool: asyncpg.Pool,
    start: datetime,
    end: datetime,
    window_days: float,
    group_by: Sequence[Dimension],
    holdout_arm: str = "holdout",
) -> ImpactReport:
    """The whole report of placed orders in [start, end): three reads of one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(impact.NO_JIT)
        totals = await impact.grouped(conn, start, end, window_days, group_by)
        rates = await impact.customer_rates(conn, start, end, window_days)
        catalogue = await impact.catalogue_size(conn)
        spends = await impact.arm_spend(conn, start, end, window_days)
    return ImpactReport(
        start=start,
        end=end,
        window_days=window_days,
        group_by=list(group_by),
        groups=_assemble(totals, group_by),
        total=_total(totals),
        uplift=uplift(rates, catalogue),
        arms=arm_comparisons(spends, holdout_arm),
    )
