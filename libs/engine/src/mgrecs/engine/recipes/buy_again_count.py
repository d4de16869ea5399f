"""Buy again by count: the plain baseline a repeat-purchase recipe has to beat.

A customer's own products ranked by the number of distinct orders that contained them,
ties and the rest of the list by recent popularity (`HistoryFirst`). `mgrecs evaluate
--repeat` reports every recipe's lift over it: a buy-again formula that cannot beat
counting orders is not worth its parameters.
"""

from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import Float64Array, IntArray
from mgrecs.engine.recipes.base import TrainingData
from mgrecs.engine.recipes.history import HistoryFirst


class BuyAgainCountRecipe(HistoryFirst):
    """History entries by their distinct orders (1 each without a context)."""

    name: ClassVar[str] = "buy-again-count"
    TIE: ClassVar[float] = 1.0

    def params(self) -> dict[str, Any]:
        return {}

    def fit(self, data: TrainingData) -> "BuyAgainCountRecipe":
        self._fit_popularity(data)
        return self

    def _plain(self, rows: sparse.csr_matrix) -> Float64Array:
        return np.zeros(rows.nnz)

    def _known(
        self,
        orders: Float64Array,
        days_since: Float64Array,
        items: IntArray,
    ) -> Float64Array:
        return orders - 1.0  # `_place` adds the 1: orders + popularity share
