"""Popularity: how many distinct customers bought each product, optionally recency-weighted.

Not personalised (every row gets the same scores); it is the cold-start answer and the
baseline every personalised recipe has to beat. On retail data, counting each purchaser once
keeps a few bulk buyers from making a product look popular, and a half-life of a few weeks
favours what sells now over what sold last season.
"""

from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import Float32Array
from mgrecs.engine.recipes.base import TrainingData
from mgrecs.engine.recipes.support import (
    decay,
    distinct_pairs,
    reference_time,
)
from mgrecs.engine.recipes.uniform import UniformScores


class PopularityRecipe(UniformScores):
    """Distinct purchasers per product; with `half_life_days`, each purchaser counts
    0.5 ** (age of their latest purchase of the product / half-life)."""

    name: ClassVar[str] = "popularity"

    def __init__(self, *, half_life_days: float | None = None) -> None:
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        self.half_life_days = half_life_days
        self._scores: Float32Array | None = None

    def params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}

    def fit(self, data: TrainingData) -> "PopularityRecipe":
        """Count purchasers from the matrix, or (with a half-life) from the order lines."""
        if self.half_life_days is None:
            purchasers = np.diff(sparse.csc_matrix(data.matrix).indptr)
            self._scores = purchasers.astype(np.float32)
            return self
        if data.line_time.size == 0:
            raise ValueError("recency-weighted popularity needs the order lines (line_time)")
        items, latest, _ = distinct_pairs(
            data.line_customer, data.line_item, data.line_time, data.n_items
        )
        weights = decay(reference_time(data) - latest, self.half_life_days)
        self._scores = np.bincount(items, weights=weights, minlength=data.n_items).astype(
            np.float32
        )
        return self


class PopularityCountRecipe(PopularityRecipe):
    """Popularity-Count as AWS Personalize defines it: distinct purchasers, however long ago.

    The plain baseline the old pipeline had. `popularity` (with a half-life chosen on
    validation) is the stricter baseline; evaluation reports lifts over both.
    """

    name: ClassVar[str] = "popularity-count"

    def __init__(self) -> None:
        super().__init__(half_life_days=None)

    def params(self) -> dict[str, Any]:
        return {}
