"""The report of one experiment: per arm, its model version's offline metrics next to what
customers did (from `feedback_events`), each rate with a 95 % confidence interval; then each
arm against the baseline (the first arm) with a p-value, the sample size each arm still
needs, and whether every arm was served the same way (`experiment_stats`).

Definitions (docs/concepts.md, Feedback and experiments): CTR = clicks / impressions;
conversion = purchases / impressions (a purchase of a recommended product per recommendation
shown); revenue per impression = purchase revenue / impressions, every impression counting as
one observation (0 for those not followed by a purchase). Rates use events reported with the
arm's tag; counts above impressions (odd reports) are capped at them for the interval.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from mgrecs.api.experiment_comparison import Plan, compare, sample_sizes, served_alike, warning
from mgrecs.api.intervals import Interval, mean_interval, wilson
from mgrecs.api.model_figures import offline_figures
from mgrecs.api.schemas.experiments import ArmReport, Estimate, ExperimentReport
from mgrecs.common.experiments import Arm, Experiment
from mgrecs.store import model_versions
from mgrecs.store.feedback import arm_sources, arm_totals, customer_revenues


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
    model_version: str | None,
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


async def experiment_report(
    pool: asyncpg.Pool, experiment: Experiment, plan: Plan | None = None
) -> ExperimentReport:
    """Every configured arm, in configuration order (arms without feedback show zeros), and
    every arm after the first compared with the first under `plan` (its defaults: a 10 %
    lift, alpha 0.05, power 0.8). The bootstrap runs in a worker thread."""
    plan = plan or Plan()
    rows = await arm_totals(pool, experiment.id)
    totals = {row["arm"]: ArmTotals(**{k: v for k, v in row.items() if k != "arm"}) for row in rows}
    sources = await arm_sources(pool, experiment.id)
    revenues = {
        arm: np.asarray(values, dtype=np.float64)
        for arm, values in (await customer_revenues(pool, experiment.id)).items()
    }
    versions = [arm.model_version for arm in experiment.arms if arm.model_version is not None]
    metrics = await model_versions.metrics_of(pool, versions)
    empty = np.zeros(0, dtype=np.float64)
    samples = {arm.name: revenues.get(arm.name, empty) for arm in experiment.arms}
    arms = [
        _arm_line(
            arm,
            metrics,
            totals.get(arm.name, ArmTotals()),
            sources.get(arm.name, {}),
            samples[arm.name],
        )
        for arm in experiment.arms
    ]
    base = experiment.arms[0]
    comparisons = await asyncio.to_thread(
        lambda: [compare(arm, base, arms, samples, plan) for arm in experiment.arms[1:]]
    )
    arms = [
        line.model_copy(update={"sample_size": sample_sizes(arm, base, arms, samples, plan)})
        for arm, line in zip(experiment.arms, arms, strict=True)
    ]
    alike, serving_warning = served_alike(experiment.arms, arms)
    return ExperimentReport(
        experiment_id=experiment.id,
        arms=arms,
        baseline=base.name,
        comparisons=comparisons,
        mde=plan.mde,
        alpha=plan.alpha,
        power=plan.power,
        warning=warning(arms),
        served_alike=alike,
        serving_warning=serving_warning,
    )


def _arm_line(
    arm: Arm,
    metrics: dict[str, Any],
    totals: ArmTotals,
    sources: dict[str, int],
    revenues: "np.ndarray[Any, np.dtype[np.float64]]",
) -> ArmReport:
    """The arm's own figures (the comparisons and sample sizes come after); `revenues`: one
    per customer with feedback in the arm."""
    line = arm_report(
        arm.name,
        arm.model_version,
        arm.share,
        metrics.get(arm.model_version) if arm.model_version else None,
        totals,
    )
    per_customer = mean_interval(
        float(revenues.sum()), float(np.square(revenues).sum()), len(revenues)
    )
    return line.model_copy(
        update={
            "serves": arm.serves,
            "served_from": sources,
            "revenue_per_customer": _estimate(per_customer),
        }
    )
