"""The report of one experiment: per arm, its model version's offline metrics next to what
customers did (from `feedback_events`), each rate with a 95 % confidence interval.

Definitions (docs/concepts.md, Feedback and experiments): CTR = clicks / impressions;
conversion = purchases / impressions (a purchase of a recommended product per recommendation
shown); revenue per impression = purchase revenue / impressions, every impression counting as
one observation (0 for those not followed by a purchase). Rates use events reported with the
arm's tag; counts above impressions (odd reports) are capped at them for the interval.
"""

from dataclasses import dataclass
from typing import Any

import asyncpg

from mgrecs.api.intervals import Interval, mean_interval, wilson
from mgrecs.api.model_figures import offline_figures
from mgrecs.api.schemas.experiments import ArmReport, Estimate, ExperimentReport
from mgrecs.common.experiments import Experiment
from mgrecs.store import model_versions
from mgrecs.store.feedback import arm_totals


@dataclass(frozen=True)
class ArmTotals:
    """What one arm's customers did, summed over its feedback events."""

    customers: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0


def _estimate(interval: Interval | None) -> Estimate | None:
    if interval is None:
        return None
    return Estimate(
        value=round(interval.value, 6), low=round(interval.low, 6), high=round(interval.high, 6)
    )


def arm_report(
    name: str,
    model_version: str,
    share: float,
    offline_metrics: dict[str, Any] | None,
    totals: ArmTotals,
) -> ArmReport:
    """One arm's line: counts, and CTR, conversion and revenue per impression with their
    intervals (null when the arm has no impressions yet)."""
    shown = totals.impressions
    return ArmReport(
        arm=name,
        model_version=model_version,
        share=share,
        offline_metrics=offline_metrics,
        offline_figures=offline_figures(offline_metrics),
        customers=totals.customers,
        impressions=shown,
        clicks=totals.clicks,
        add_to_carts=totals.add_to_carts,
        purchases=totals.purchases,
        revenue=round(totals.revenue, 2),
        ctr=_estimate(wilson(min(totals.clicks, shown), shown)),
        conversion=_estimate(wilson(min(totals.purchases, shown), shown)),
        revenue_per_impression=_estimate(
            mean_interval(totals.revenue, totals.revenue_squares, shown)
        ),
    )


async def experiment_report(pool: asyncpg.Pool, experiment: Experiment) -> ExperimentReport:
    """Every configured arm, in configuration order (arms without feedback show zeros)."""
    rows = await arm_totals(pool, experiment.id)
    totals = {row["arm"]: ArmTotals(**{k: v for k, v in row.items() if k != "arm"}) for row in rows}
    versions = [arm.model_version for arm in experiment.arms]
    metrics = await model_versions.metrics_of(pool, versions)
    return ExperimentReport(
        experiment_id=experiment.id,
        arms=[
            arm_report(
                arm.name,
                arm.model_version,
                arm.share,
                metrics.get(arm.model_version),
                totals.get(arm.name, ArmTotals()),
            )
            for arm in experiment.arms
        ],
    )
