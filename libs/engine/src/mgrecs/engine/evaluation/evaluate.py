"""Fit one recipe on a split's training data and measure its top-k on the held-out truth."""

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, IntArray
from mgrecs.engine.evaluation.metrics import Metrics, ranking_metrics
from mgrecs.engine.evaluation.split import Split
from mgrecs.engine.recipes.base import ContextScoring, Recipe, ScoringContext
from mgrecs.engine.recipes.support import history_context, score_rows

SCORE_CELLS = 1 << 25
"""Scores held at once (users x items of one chunk, float32: 128 MiB) bounds memory."""


@dataclass(frozen=True)
class Trial:
    """One grid point tried on the validation split."""

    params: dict[str, Any]
    ndcg: float
    seconds: float


@dataclass(frozen=True)
class RecipeReport:
    """How one recipe did on the test period, and how its parameters were chosen."""

    recipe: str
    params: dict[str, Any]
    metrics: Metrics
    train_seconds: float
    inference_seconds: float
    trials: list[Trial] = field(default_factory=list)
    budget_exhausted: bool = False
    """The tuning time budget ran out before the whole grid was tried."""
    top: IntArray | None = field(default=None, repr=False, compare=False)
    """The lists measured: (test users x k) item indices, best first, -1 past the end (the
    cold-start report places new products in the served recipe's)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "params": self.params,
            "metrics": self.metrics.as_dict(),
            "train_seconds": round(self.train_seconds, 3),
            "inference_seconds": round(self.inference_seconds, 3),
            "tuning": {
                "trials": [
                    {
                        "params": t.params,
                        "validation_ndcg@10": t.ndcg,
                        "seconds": round(t.seconds, 3),
                    }
                    for t in self.trials
                ],
                "budget_exhausted": self.budget_exhausted,
            },
        }


def top_k(scores: Float32Array, k: int, exclude: sparse.csr_matrix | None) -> IntArray:
    """Indices of each row's k best items, best first (-1 where fewer are left).

    `exclude` (same shape, e.g. the users' purchases) marks items that may not be shown;
    `scores` is overwritten there. The same scores always give the same list.
    """
    n_users, n_items = scores.shape
    if exclude is not None and exclude.nnz:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    scores[np.isnan(scores)] = -np.inf
    keep = min(k, n_items)
    if keep == 0:
        return np.full((n_users, k), -1, dtype=np.int64)
    part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    top = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top[np.take_along_axis(part_scores, order, axis=1) == -np.inf] = -1
    if keep < k:
        top = np.hstack([top, np.full((n_users, k - keep), -1, dtype=np.int64)])
    return top


def recommend(
    recipe: Recipe, split: Split, k: int, context: ScoringContext | None = None
) -> IntArray:
    """Top-k for every evaluated user of `split`, scored in memory-bounded chunks, with what
    production knows of them at the boundary (`history_context`, or `context` when the
    caller computed it already) for recipes that use it."""
    rows_all = split.train.matrix[split.users]
    if not isinstance(recipe, ContextScoring):
        context = None
    elif context is None:
        context = history_context(split.train, split.users)
    chunk = max(1, SCORE_CELLS // max(split.n_items, 1))
    parts = []
    for start in range(0, split.users.size, chunk):
        rows = rows_all[start : start + chunk]
        chunk_context = None if context is None else context.take(start, start + chunk)
        scores = np.asarray(score_rows(recipe, rows, chunk_context), dtype=np.float32)
        parts.append(top_k(scores, k, None if split.repeat else rows))
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64)


def evaluate_recipe(
    recipe: Recipe,
    split: Split,
    k: int = 10,
    *,
    fitted: bool = False,
    context: ScoringContext | None = None,
) -> RecipeReport:
    """Fit `recipe` on the training period, rank for the evaluated users, score the ranking.

    Training purchases are excluded from the ranking unless the split counts repeats.
    `fitted`: the recipe is already fitted on `split.train` and is measured as it is (a
    second fit would give the same: recipes are seeded); `context`: `history_context` of
    the split's users, when the caller measures several recipes on it.
    """
    started = time.perf_counter()
    if not fitted:
        recipe.fit(split.train)
    trained = time.perf_counter()
    top = recommend(recipe, split, k, context)
    inferred = time.perf_counter()
    return RecipeReport(
        recipe=recipe.name,
        params=dict(recipe.params()),
        metrics=ranking_metrics(top, split.truth, split.n_items),
        train_seconds=trained - started,
        inference_seconds=inferred - trained,
        top=top,
    )
