"""Buy again: a customer's own purchase history as the score, by the `repurchase` formula.

When already-purchased products are not excluded, what a customer bought in many separate
orders, lately, and what is re-bought by most of its buyers is the strongest single
predictor of their next basket (personal-frequency baselines beat deep next-basket models
in published comparisons). The formula (`repurchase.buy_again_scores`) is shared with the
api's buy-again list; this recipe fits its per-product statistics and scores a history with
it. Other products follow, by recent popularity (`HistoryFirst`).

Order counts and dates come from the `ScoringContext` (evaluation, the api). Without one,
`score(rows)` knows only which products a customer bought: each counts as one order of
unknown date, scored by the product's repeat rate alone.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.recipes.base import IntArray, State, TrainingData
from mgrecs.engine.recipes.history import HistoryFirst
from mgrecs.engine.recipes.support import fitted
from mgrecs.engine.repurchase import (
    BuyAgainParams,
    RepurchaseStats,
    buy_again_scores,
    fit_repurchase,
)


class BuyAgainRecipe(HistoryFirst):
    """History entries by `buy_again_scores` (parameters: `BuyAgainParams`)."""

    name: ClassVar[str] = "buy-again"
    TIE: ClassVar[float] = 1e-3

    def __init__(
        self,
        *,
        half_life_days: float | None = BuyAgainParams.half_life_days,
        repeat_weight: float = BuyAgainParams.repeat_weight,
        due_weight: float = BuyAgainParams.due_weight,
        frequency_power: float = BuyAgainParams.frequency_power,
    ) -> None:
        self.settings = BuyAgainParams(half_life_days, repeat_weight, due_weight, frequency_power)
        self._stats: RepurchaseStats | None = None

    def params(self) -> dict[str, Any]:
        return self.settings.as_dict()

    def fit(self, data: TrainingData) -> "BuyAgainRecipe":
        """Repeat rates and intervals from the order lines (without lines every product is
        equally re-buyable), and the popularity that completes the list."""
        self._stats = fit_repurchase(
            data.line_customer, data.line_item, data.line_time, data.n_items
        )
        self._fit_completion(data)
        return self

    def _plain(self, rows: sparse.csr_matrix) -> npt.NDArray[np.float64]:
        stats = fitted(self._stats, self.name)
        undated = BuyAgainParams(None, self.settings.repeat_weight, 0.0, 1.0)
        items = rows.indices
        return buy_again_scores(
            np.ones(items.size),
            np.zeros(items.size),
            stats.repeat_rate[items],
            stats.interval_days[items],
            undated,
        )

    def _known(
        self,
        orders: npt.NDArray[np.float64],
        days_since: npt.NDArray[np.float64],
        items: IntArray,
    ) -> npt.NDArray[np.float64]:
        stats = fitted(self._stats, self.name)
        return buy_again_scores(
            orders,
            days_since,
            stats.repeat_rate[items],
            stats.interval_days[items],
            self.settings,
        )

    def state(self) -> dict[str, npt.NDArray[Any]]:
        stats = fitted(self._stats, self.name)
        return {
            **super().state(),
            "repeat_rate": stats.repeat_rate,
            "interval_days": stats.interval_days,
        }

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "BuyAgainRecipe":
        recipe = super().from_state(params, arrays)
        recipe._stats = RepurchaseStats(
            repeat_rate=np.asarray(arrays["repeat_rate"], dtype=np.float64),
            interval_days=np.asarray(arrays["interval_days"], dtype=np.float64),
        )
        return recipe
