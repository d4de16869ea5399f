"""Buy again: a customer's own purchase history as the score.

When already-purchased products are not excluded, what a customer bought often and lately
is the strongest single predictor of their next basket (personal-frequency baselines beat
deep next-basket models in published comparisons). On top of the history, the recipe learns
how re-buyable each product is: coffee is bought again, a television rarely is.

Limitation: `score` sees rows, not order lines, so frequency and recency are whatever the
row values carry — the caller's weights (log1p of the quantity, decayed by recency when the
matrix was built with a half-life). Items outside a row score 0; an empty row scores 0
everywhere (the caller falls back to popularity).
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.recipes.base import FloatArray, State, TrainingData
from mgrecs.engine.recipes.support import as_rows, distinct_pairs, fitted

PRIOR_PURCHASERS = 5.0
"""Strength of the global repeat rate as a prior on each product's own rate."""


class BuyAgainRecipe:
    """score = row value x (1 - repeat_weight + repeat_weight x repeat rate of the product),
    where a product's repeat rate is the smoothed share of its purchasers who bought it in
    more than one order."""

    name: ClassVar[str] = "buy-again"

    def __init__(self, *, repeat_weight: float = 0.5) -> None:
        if not 0.0 <= repeat_weight <= 1.0:
            raise ValueError("repeat_weight must be in [0, 1]")
        self.repeat_weight = repeat_weight
        self._multiplier: FloatArray | None = None

    def params(self) -> dict[str, Any]:
        return {"repeat_weight": self.repeat_weight}

    def fit(self, data: TrainingData) -> "BuyAgainRecipe":
        """Repeat rates from the order lines (orders = distinct line times); without lines,
        every product counts as equally re-buyable."""
        items, _, orders = distinct_pairs(
            data.line_customer, data.line_item, data.line_time, data.n_items
        )
        purchasers = np.bincount(items, minlength=data.n_items).astype(np.float64)
        repeaters = np.bincount(
            items, weights=(orders > 1).astype(np.float64), minlength=data.n_items
        )
        prior = repeaters.sum() / purchasers.sum() if purchasers.sum() > 0 else 1.0
        rate = (repeaters + PRIOR_PURCHASERS * prior) / (purchasers + PRIOR_PURCHASERS)
        multiplier = 1.0 - self.repeat_weight + self.repeat_weight * rate
        self._multiplier = multiplier.astype(np.float32)
        return self

    def score(self, rows: sparse.csr_matrix) -> FloatArray:
        multiplier = fitted(self._multiplier, self.name)
        checked = as_rows(rows, multiplier.shape[0])
        scores: FloatArray = checked.multiply(multiplier[np.newaxis, :]).toarray()
        return scores.astype(np.float32, copy=False)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"multiplier": fitted(self._multiplier, self.name)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "BuyAgainRecipe":
        recipe = cls(**params)
        recipe._multiplier = np.asarray(arrays["multiplier"], dtype=np.float32)
        return recipe
