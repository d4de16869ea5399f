"""Choose the buy-again formula's parameters for a new model: the grid point with the best
NDCG@10 on the most recent purchases, repeat purchases counting, and its per-product
statistics fitted on everything.

Retrain calls `select_buy_again` and stores what it returns; the api's buy-again list then
scores a customer's history with those parameters and statistics (`repurchase`). The
validation period is the one `selection.validation_split` cuts (the last
VALIDATION_FRACTION of the time span), but in repeat mode: products a customer bought
before are right answers and stay in the ranking. `buy-again-count` is measured on it too,
so the stored evidence says whether the formula beats counting orders.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mgrecs.engine.dataset import Lines
from mgrecs.engine.evaluation.evaluate import evaluate_recipe
from mgrecs.engine.evaluation.split import InsufficientData
from mgrecs.engine.evaluation.tuning import TUNING_K, tune
from mgrecs.engine.recipes import GRIDS, BuyAgainCountRecipe, BuyAgainRecipe
from mgrecs.engine.records import Interaction
from mgrecs.engine.repurchase import BuyAgainParams, RepurchaseStats, fit_repurchase
from mgrecs.engine.selection import validation_split

BUDGET_SECONDS = 60.0
"""Tuning time; the grid is small and each point takes well under a second per 100k lines."""


@dataclass(frozen=True)
class BuyAgainChoice:
    """The chosen parameters, the statistics to score with, and the evidence."""

    params: BuyAgainParams
    stats: RepurchaseStats
    product_ids: list[str]
    """Product id of each index of `stats`."""
    buy_again_ndcg: float | None
    """Validation NDCG@10 of the chosen parameters (None on a fallback)."""
    buy_again_count_ndcg: float | None
    """Validation NDCG@10 of `buy-again-count` on the same period (None on a fallback)."""
    fallback: str | None = None
    """Why the defaults were taken without a search (too little data), or None."""

    def to_metrics(self) -> dict[str, Any]:
        """JSON for the model's metadata."""
        return {
            "params": self.params.as_dict(),
            "validation_ndcg@10": self.buy_again_ndcg,
            "buy_again_count_ndcg@10": self.buy_again_count_ndcg,
            "fallback": self.fallback,
        }


def select_buy_again(
    interactions: Sequence[Interaction] | Lines, budget_seconds: float = BUDGET_SECONDS
) -> BuyAgainChoice:
    """Parameters from `GRIDS["buy-again"]` by validation NDCG@10 (the defaults, first, win
    ties), statistics from all lines; the defaults when there is too little data.

    Only the formula's own points are tried: the api list is the history alone (what
    completes it is the served model's business), so a discovery recipe mixed in has no
    place there."""
    if not len(interactions):
        return BuyAgainChoice(
            BuyAgainParams(),
            fit_repurchase(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 0),
            [],
            None,
            None,
            "there are no order lines",
        )
    lines = Lines.of(interactions)
    stats = fit_repurchase(lines.customer, lines.item, lines.time, len(lines.item_ids))
    try:
        split = validation_split(lines, repeat=True)
    except InsufficientData as error:
        return BuyAgainChoice(BuyAgainParams(), stats, lines.item_ids, None, None, str(error))

    fields = set(BuyAgainParams().as_dict())
    grid = [point for point in GRIDS[BuyAgainRecipe.name] if set(point) <= fields]
    fitted = BuyAgainRecipe().fit(split.train)  # what the points share: fitted once
    tuning = tune(lambda p: fitted.with_formula(**p), grid, split, budget_seconds, fitted=True)
    chosen = BuyAgainParams(**{**BuyAgainParams().as_dict(), **tuning.params})
    ndcg = (
        tuning.metrics.ndcg
        if tuning.metrics is not None
        else evaluate_recipe(BuyAgainRecipe(**chosen.as_dict()), split, TUNING_K).metrics.ndcg
    )
    count = evaluate_recipe(BuyAgainCountRecipe(), split, TUNING_K).metrics.ndcg
    return BuyAgainChoice(chosen, stats, lines.item_ids, ndcg, count)
