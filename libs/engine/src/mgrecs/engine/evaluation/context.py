"""Does time context help a recipe? Choose its strength on validation, measure on test.

The recipe (parameters already chosen) is fitted once per split; its scores for the
evaluated customers are re-weighted (`mgrecs.engine.context`) for each customer's request
time, the first order line of theirs in the period evaluated, at every grid point. The
point with the best validation NDCG@10 is the one reported on the test period, next to the
recipe without context (gamma 0, always in the grid, first, so it wins ties). The test
figures of every grid point are kept too, as a ceiling, never for choosing.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mgrecs.engine.arrays import IntArray
from mgrecs.engine.context import DEFAULT_SMOOTHING, ContextKind, fit_context
from mgrecs.engine.evaluation.evaluate import SCORE_CELLS, top_k
from mgrecs.engine.evaluation.metrics import Metrics, ranking_metrics
from mgrecs.engine.evaluation.split import Split
from mgrecs.engine.evaluation.tuning import TUNING_K
from mgrecs.engine.recipes.base import Recipe


@dataclass(frozen=True)
class ContextPoint:
    """One context strength: gamma 0 is the recipe alone."""

    gamma: float
    smoothing: float = DEFAULT_SMOOTHING


CONTEXT_GRID: tuple[ContextPoint, ...] = (
    ContextPoint(0.0),
    *(ContextPoint(g, s) for s in (10.0, 100.0) for g in (0.5, 1.0, 2.0)),
)
"""Tried on validation; gamma 0 first."""


@dataclass(frozen=True)
class ContextReport:
    """A recipe with and without time context on one split."""

    kind: str
    chosen: ContextPoint
    validation: dict[ContextPoint, float]
    """Validation NDCG@10 per grid point (empty without a validation split)."""
    test: dict[ContextPoint, Metrics]
    """Test metrics per grid point."""

    @property
    def without(self) -> Metrics:
        return self.test[ContextPoint(0.0)]

    @property
    def with_context(self) -> Metrics:
        return self.test[self.chosen]

    @property
    def gain_percent(self) -> float | None:
        """Test NDCG change of the chosen point over gamma 0, in %."""
        base = self.without.ndcg
        return (self.with_context.ndcg - base) / base * 100.0 if base > 0 else None


def context_metrics(
    recipe: Recipe,
    split: Split,
    kind: ContextKind,
    points: Sequence[ContextPoint] = CONTEXT_GRID,
    k: int = 10,
) -> dict[ContextPoint, Metrics]:
    """Fit `recipe` on the split's training period and measure top-k at every point.

    Scores are computed once per chunk of customers and re-weighted per point; at gamma 0
    the lists are exactly `evaluate.recommend`'s.
    """
    recipe.fit(split.train)
    train = split.train
    profiles = {
        s: fit_context(train.line_item, train.line_time, split.n_items, kind, s)
        for s in {p.smoothing for p in points}
    }
    rows_all = train.matrix[split.users]
    chunk = max(1, SCORE_CELLS // max(split.n_items, 1))
    parts: dict[ContextPoint, list[IntArray]] = {p: [] for p in points}
    for start in range(0, split.users.size, chunk):
        rows = rows_all[start : start + chunk]
        times = split.request_time[start : start + chunk]
        scores = np.asarray(recipe.score(rows), dtype=np.float32)
        for point in points:
            weighted = profiles[point.smoothing].reweight(scores, times, point.gamma)
            parts[point].append(top_k(weighted, k, None if split.repeat else rows))
    return {
        point: ranking_metrics(
            np.vstack(tops) if tops else np.zeros((0, k), dtype=np.int64),
            split.truth,
            split.n_items,
        )
        for point, tops in parts.items()
    }


def evaluate_with_context(
    recipe: Recipe,
    split: Split,
    kind: ContextKind,
    points: Sequence[ContextPoint] = CONTEXT_GRID,
    k: int = 10,
) -> ContextReport:
    """Choose the context strength on `split.validation` (gamma 0 without one), then
    measure every point on the test period. `recipe` is refitted for each split."""
    if ContextPoint(0.0) not in points:
        points = [ContextPoint(0.0), *points]
    validation: dict[ContextPoint, float] = {}
    chosen = ContextPoint(0.0)
    if split.validation is not None:
        measured = context_metrics(recipe, split.validation, kind, points, TUNING_K)
        validation = {point: m.ndcg for point, m in measured.items()}
        chosen = max(points, key=lambda p: validation[p])  # max keeps the first of equals
    test = context_metrics(recipe, split, kind, points, k)
    return ContextReport(kind, chosen, validation, test)
