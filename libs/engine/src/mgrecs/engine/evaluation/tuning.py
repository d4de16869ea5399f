"""Choose a recipe's hyper-parameters on the validation split, within a time budget.

The grid is tried in order (put the recommended default first): each point is fitted on the
validation split's training part and scored by NDCG@10 on its validation period. When the
budget is spent the search stops and keeps the best point so far, so a slow recipe cannot
hold up the whole evaluation.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mgrecs.engine.evaluation.evaluate import Trial, evaluate_recipe
from mgrecs.engine.evaluation.metrics import Metrics
from mgrecs.engine.evaluation.split import Split
from mgrecs.engine.recipes.base import Recipe

TUNING_K = 10
"""Cut-off of the selection metric, NDCG@10: the metric the promotion gate uses too."""


@dataclass(frozen=True)
class Tuning:
    """The chosen parameters and every trial that led to them."""

    params: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)
    budget_exhausted: bool = False
    metrics: Metrics | None = None
    """The chosen point's full metrics on the validation split (None when nothing was
    fitted), so the caller need not fit it again to report them."""


def tune(
    make: Callable[[dict[str, Any]], Recipe],
    grid: Sequence[Mapping[str, Any]],
    validation: Split | None,
    budget_seconds: float = 60.0,
) -> Tuning:
    """Best grid point by validation NDCG@10 (earliest wins ties).

    With one grid point, or no validation split (too little data at the end of the training
    period), nothing is fitted and the first point is taken.
    """
    points = [dict(point) for point in grid] or [{}]
    if len(points) == 1 or validation is None:
        return Tuning(points[0])
    started = time.perf_counter()
    trials: list[Trial] = []
    metrics: list[Metrics] = []
    exhausted = False
    for point in points:
        if trials and time.perf_counter() - started > budget_seconds:
            exhausted = True
            break
        trial_started = time.perf_counter()
        report = evaluate_recipe(make(point), validation, TUNING_K)
        trials.append(Trial(point, report.metrics.ndcg, time.perf_counter() - trial_started))
        metrics.append(report.metrics)
    best = max(range(len(trials)), key=lambda n: trials[n].ndcg)  # max keeps the first of equals
    return Tuning(trials[best].params, trials, exhausted, metrics[best])
