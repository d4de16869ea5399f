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
from mgrecs.engine.recipes.base import ContextScoring, Recipe, ScoringContext
from mgrecs.engine.recipes.support import history_context

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
    recipe: Recipe | None = field(default=None, repr=False, compare=False)
    """The chosen point's recipe as fitted on the validation split's training part (None
    when nothing was fitted), so a blend over it need not fit it again."""


def tune(
    make: Callable[[dict[str, Any]], Recipe],
    grid: Sequence[Mapping[str, Any]],
    validation: Split | None,
    budget_seconds: float = 60.0,
    *,
    fitted: bool = False,
) -> Tuning:
    """Best grid point by validation NDCG@10 (earliest wins ties).

    With one grid point, or no validation split (too little data at the end of the training
    period), nothing is fitted and the first point is taken. `fitted`: `make` gives recipes
    already fitted on the validation split's training part (the points share a fit), which
    are measured as they are. The customers' scoring context is computed once for all
    points.
    """
    points = [dict(point) for point in grid] or [{}]
    if len(points) == 1 or validation is None:
        return Tuning(points[0])
    started = time.perf_counter()
    trials: list[Trial] = []
    metrics: list[Metrics] = []
    best_recipe: Recipe | None = None
    best = 0
    context: ScoringContext | None = None
    exhausted = False
    for point in points:
        if trials and time.perf_counter() - started > budget_seconds:
            exhausted = True
            break
        trial_started = time.perf_counter()
        recipe = make(point)
        if context is None and isinstance(recipe, ContextScoring):
            context = history_context(validation.train, validation.users)
        report = evaluate_recipe(recipe, validation, TUNING_K, fitted=fitted, context=context)
        trials.append(Trial(point, report.metrics.ndcg, time.perf_counter() - trial_started))
        metrics.append(report.metrics)
        if best_recipe is None or report.metrics.ndcg > trials[best].ndcg:  # first of equals
            best_recipe, best = recipe, len(trials) - 1  # the only fitted recipe kept
    return Tuning(trials[best].params, trials, exhausted, metrics[best], best_recipe)
