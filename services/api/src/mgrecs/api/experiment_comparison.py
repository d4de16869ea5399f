"""An experiment's arms against its baseline: the differences with their tests, the sample
size each arm still needs and the warning while one is short, and whether the arms were
served alike. The arithmetic is `experiment_stats`'; this module picks its inputs from the
arms' reports (docs/concepts.md, Reading an experiment's report)."""

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mgrecs.api import experiment_stats
from mgrecs.api.schemas.experiments import (
    ArmReport,
    ArmSampleSizes,
    Comparison,
    Difference,
    SampleSize,
)
from mgrecs.common.experiments import Arm

Samples = dict[str, "np.ndarray[Any, np.dtype[np.float64]]"]
Measure = Literal["ctr", "conversion", "revenue_per_customer"]
UNITS: dict[Measure, str] = {
    "ctr": "impressions",
    "conversion": "impressions",
    "revenue_per_customer": "customers",
}


@dataclass(frozen=True)
class Plan:
    """What the experiment should be able to detect: a relative lift `mde` over the
    baseline, with a two-sided test at `alpha` and the chance `power` to see it."""

    mde: float = 0.1
    alpha: float = 0.05
    power: float = 0.8


def measures(arm: Arm, base: Arm) -> tuple[Measure, ...]:
    """The measures that apply to both arms: none with an arm served nothing (no list, so
    no feedback: the impact report measures it on real orders)."""
    if "nothing" in (arm.serves, base.serves):
        return ()
    return ("ctr", "conversion", "revenue_per_customer")


def _line(arms: list[ArmReport], name: str) -> ArmReport:
    return next(line for line in arms if line.arm == name)


def _counts(line: ArmReport, measure: Measure) -> tuple[int, int]:
    """(successes, trials) of a rate; counts above the impressions are capped at them."""
    hits = line.clicks if measure == "ctr" else line.purchases
    return min(hits, line.impressions), line.impressions


def _difference(found: experiment_stats.Difference | None, alpha: float) -> Difference | None:
    if found is None:
        return None
    return Difference(
        value=round(found.value, 6),
        low=round(found.low, 6),
        high=round(found.high, 6),
        p_value=round(found.p_value, 6),
        significant=found.p_value < alpha,
    )


def compare(arm: Arm, base: Arm, arms: list[ArmReport], samples: Samples, plan: Plan) -> Comparison:
    """`arm` against the baseline arm `base` on each measure that applies to both."""
    line, base_line = _line(arms, arm.name), _line(arms, base.name)
    found: dict[str, Difference | None] = {}
    for measure in measures(arm, base):
        if measure == "revenue_per_customer":
            result = experiment_stats.bootstrap_means(
                samples[arm.name], samples[base.name], plan.alpha
            )
        else:
            result = experiment_stats.two_proportions(
                *_counts(line, measure), *_counts(base_line, measure), plan.alpha
            )
        found[measure] = _difference(result, plan.alpha)
    return Comparison(
        arm=arm.name,
        baseline=base.name,
        ctr=found.get("ctr"),
        conversion=found.get("conversion"),
        revenue_per_customer=found.get("revenue_per_customer"),
    )


def required(measure: Measure, base_line: ArmReport, base_sample: Any, plan: Plan) -> int | None:
    """Observations per arm to detect `plan.mde` over the baseline's observed figure."""
    if measure == "revenue_per_customer":
        if len(base_sample) < 2:
            return None
        return experiment_stats.sample_size_mean(
            float(np.mean(base_sample)),
            float(np.std(base_sample, ddof=1)),
            plan.mde,
            plan.alpha,
            plan.power,
        )
    hits, trials = _counts(base_line, measure)
    if trials == 0:
        return None
    return experiment_stats.sample_size_proportion(hits / trials, plan.mde, plan.alpha, plan.power)


def sample_sizes(
    arm: Arm, base: Arm, arms: list[ArmReport], samples: Samples, plan: Plan
) -> ArmSampleSizes:
    """For each measure that applies: the arm's observations, the size it needs (the same
    for every arm: computed from the baseline) and how many more."""
    line, base_line = _line(arms, arm.name), _line(arms, base.name)
    sizes: dict[str, SampleSize] = {}
    for measure in measures(arm, base):
        observed = line.customers if measure == "revenue_per_customer" else line.impressions
        needed = required(measure, base_line, samples[base.name], plan)
        sizes[measure] = SampleSize(
            observed=observed,
            required=needed,
            still_needed=None if needed is None else max(needed - observed, 0),
        )
    return ArmSampleSizes(**sizes)


def warning(arms: list[ArmReport]) -> str | None:
    """Which arm is short of what, while any is; None once every arm has enough."""
    short: list[str] = []
    for line in arms:
        for measure, unit in UNITS.items():
            size: SampleSize | None = getattr(line.sample_size, measure)
            if size is None:
                continue
            if size.still_needed is None:
                short.append(f"{line.arm} {measure}: the baseline has no data to size it yet")
            elif size.still_needed > 0:
                short.append(f"{line.arm} {measure}: {size.still_needed} more {unit}")
    if not short:
        return None
    return "sample too small, differences are not conclusive yet: " + "; ".join(short)


def main_source(line: ArmReport) -> str | None:
    """The source that served most of the arm's impressions (None without impressions)."""
    if not line.served_from:
        return None
    return max(sorted(line.served_from), key=lambda source: line.served_from[source])


def served_alike(config: list[Arm], arms: list[ArmReport]) -> tuple[bool, str | None]:
    """Whether every model arm with impressions was mostly served from the same source
    (holdout arms are served otherwise by design), and if not, a warning naming them."""
    found = {
        line.arm: source
        for arm, line in zip(config, arms, strict=True)
        if not arm.holdout and (source := main_source(line)) is not None
    }
    if len(set(found.values())) <= 1:
        return True, None
    named = ", ".join(f"{arm} mostly {source}" for arm, source in found.items())
    return False, f"arms served differently ({named}): the comparison mixes serving and model"
