"""Buy again: a customer's own purchase history as the score, by the `repurchase` formula.

When already-purchased products are not excluded, what a customer bought in many separate
orders, lately, and what is re-bought by most of its buyers is the strongest single
predictor of their next basket (personal-frequency baselines beat deep next-basket models
in published comparisons). The formula (`repurchase.buy_again_scores`) is shared with the
api's buy-again list; this recipe fits its per-product statistics and scores a history with
it.

What follows the history: by default recent popularity, every history product first
(`HistoryFirst`). With a `completion_weight`, a discovery recipe (`completion`, RP3beta by
default) competes with the history instead: each history product scores its share of the
customer's history total, every product adds the weight times the discovery score over the
customer's best one. A customer with a long history spreads it thin, so a product they are
very likely to try can pass one they bought once long ago (on the generator, where a third
of each order repeats and half follows lasting tastes, that is worth 3-4 % NDCG@10 over
history first; on Instacart, history first stays best). Validation chooses.

Order counts and dates come from the `ScoringContext` (evaluation, the api). Without one,
`score(rows)` knows only which products a customer bought: each counts as one order of
unknown date, scored by the product's repeat rate alone.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, Float64Array, IntArray
from mgrecs.engine.recipes.base import Recipe, State, TrainingData
from mgrecs.engine.recipes.history import History, HistoryFirst
from mgrecs.engine.recipes.support import fitted
from mgrecs.engine.repurchase import (
    BuyAgainParams,
    RepurchaseStats,
    buy_again_scores,
    fit_repurchase,
)

DEFAULT_COMPLETION = "rp3beta"
"""The discovery recipe that competes with the history when `completion_weight` > 0 (the
model's default recipe, with its default parameters)."""
COMPLETION_PREFIX = "completion."
"""State keys of the discovery recipe, inside this recipe's state."""


class BuyAgainRecipe(HistoryFirst):
    """History entries by `buy_again_scores` (parameters: `BuyAgainParams`), then recent
    popularity, or mixed with a discovery recipe (`completion`, `completion_weight`)."""

    name: ClassVar[str] = "buy-again"
    TIE: ClassVar[float] = 1e-3

    def __init__(
        self,
        *,
        half_life_days: float | None = BuyAgainParams.half_life_days,
        repeat_weight: float = BuyAgainParams.repeat_weight,
        due_weight: float = BuyAgainParams.due_weight,
        frequency_power: float = BuyAgainParams.frequency_power,
        completion: str = DEFAULT_COMPLETION,
        completion_weight: float = 0.0,
    ) -> None:
        self.settings = BuyAgainParams(half_life_days, repeat_weight, due_weight, frequency_power)
        if not 0.0 <= completion_weight <= 1.0:
            raise ValueError("completion_weight must be in [0, 1]")
        if completion == self.name:
            raise ValueError("buy-again cannot complete itself")
        self.completion = completion
        self.completion_weight = completion_weight
        self._stats: RepurchaseStats | None = None
        self._discovery: Recipe | None = None

    def params(self) -> dict[str, Any]:
        return {
            **self.settings.as_dict(),
            "completion": self.completion,
            "completion_weight": self.completion_weight,
        }

    def fit(self, data: TrainingData) -> "BuyAgainRecipe":
        """Repeat rates and intervals from the order lines (without lines every product is
        equally re-buyable), recent popularity, and the discovery recipe if it is mixed in."""
        self._stats = fit_repurchase(
            data.line_customer, data.line_item, data.line_time, data.n_items
        )
        self._fit_popularity(data)
        if self.completion_weight > 0:
            from mgrecs.engine.recipes import make_recipe  # the registry imports this module

            self._discovery = make_recipe(self.completion).fit(data)
        return self

    def with_formula(self, **params: Any) -> "BuyAgainRecipe":
        """This fitted recipe with other formula parameters (`BuyAgainParams` fields): the
        repeat rates, intervals, popularity and discovery recipe do not depend on them, so
        tuning the formula fits once for the whole grid."""
        unknown = set(params) - set(BuyAgainParams().as_dict())
        if unknown:
            raise ValueError(f"not formula parameters: {', '.join(sorted(unknown))}")
        recipe = BuyAgainRecipe(**{**self.params(), **params})
        recipe._stats = fitted(self._stats, self.name)
        recipe._popularity = self._popularity
        recipe._discovery = self._discovery
        return recipe

    def _plain(self, rows: sparse.csr_matrix) -> Float64Array:
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
        orders: Float64Array,
        days_since: Float64Array,
        items: IntArray,
    ) -> Float64Array:
        stats = fitted(self._stats, self.name)
        return buy_again_scores(
            orders,
            days_since,
            stats.repeat_rate[items],
            stats.interval_days[items],
            self.settings,
        )

    def _ranked(self, rows: sparse.csr_matrix, history: History) -> Float32Array:
        """History first, or (mixed) each history entry's share of its row's history total
        plus `completion_weight` x the discovery score over the row's best one."""
        if self.completion_weight == 0:
            return super()._ranked(rows, history)
        discovery = fitted(self._discovery, self.name)
        popularity = fitted(self._popularity, self.name)
        raw = np.asarray(discovery.score(rows), dtype=np.float64)
        best = raw.max(axis=1, keepdims=True, initial=0.0)
        mixed = raw / np.where(best > 0, best, 1.0) * self.completion_weight
        scores = (mixed + self.TIE * popularity).astype(np.float32)
        totals = np.bincount(history.rows, weights=history.values, minlength=rows.shape[0])
        shares = history.values / np.where(totals > 0, totals, 1.0)[history.rows]
        scores[history.rows, history.cols] += shares.astype(np.float32)
        return scores

    def state(self) -> dict[str, npt.NDArray[Any]]:
        stats = fitted(self._stats, self.name)
        discovery = (
            {}
            if self.completion_weight == 0
            else {
                COMPLETION_PREFIX + key: value
                for key, value in fitted(self._discovery, self.name).state().items()
            }
        )
        return {
            **super().state(),
            "repeat_rate": stats.repeat_rate,
            "interval_days": stats.interval_days,
            **discovery,
        }

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "BuyAgainRecipe":
        recipe = super().from_state(params, arrays)
        recipe._stats = RepurchaseStats(
            repeat_rate=np.asarray(arrays["repeat_rate"], dtype=np.float64),
            interval_days=np.asarray(arrays["interval_days"], dtype=np.float64),
        )
        if recipe.completion_weight > 0:
            from mgrecs.engine.recipes import RECIPES, make_recipe

            inner = {
                key.removeprefix(COMPLETION_PREFIX): value
                for key, value in arrays.items()
                if key.startswith(COMPLETION_PREFIX)
            }
            defaults = make_recipe(recipe.completion).params()
            recipe._discovery = RECIPES[recipe.completion].from_state(defaults, inner)
        return recipe
