"""The shared half of the repeat-purchase recipes (`buy-again`, `buy-again-count`): a
customer's own products first, ranked by a history score, then every other product by
recent popularity.

When purchased products stay in the list (repeat mode, a "buy it again" page), a short
history must not leave the rest of the list to chance: recent popularity completes it, and
breaks ties within the history. A recipe supplies the history score twice: from the rows
alone (binary, no dates: real time without stored history) and from a `ScoringContext`
(distinct orders and latest purchase date per product, as evaluation and the api know them).
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.recipes.base import FloatArray, IntArray, ScoringContext, State, TrainingData
from mgrecs.engine.recipes.support import (
    SECONDS_PER_DAY,
    as_rows,
    decay,
    distinct_pairs,
    fitted,
    reference_time,
)

COMPLETION_HALF_LIFE_DAYS = 30.0
"""Recency of the popularity that completes the list: what sells now."""


def recent_popularity(data: TrainingData, half_life_days: float) -> npt.NDArray[np.float64]:
    """Distinct purchasers per product, each decayed by the age of their latest purchase of
    it; the matrix's purchaser counts when there are no order lines."""
    if data.line_time.size == 0:
        counts: npt.NDArray[np.float64] = np.diff(sparse.csc_matrix(data.matrix).indptr).astype(
            np.float64
        )
        return counts
    items, latest, _ = distinct_pairs(
        data.line_customer, data.line_item, data.line_time, data.n_items
    )
    weights = decay(reference_time(data) - latest, half_life_days)
    return np.bincount(items, weights=weights, minlength=data.n_items).astype(np.float64)


class HistoryFirst(ABC):
    """Subclasses say how a history entry scores (`_plain`, `_known`), both >= 0; this
    class puts history entries at 1 + that score (+ a tie-break below `TIE` x 1), and
    every other product at its popularity share in [0, 1)."""

    name: ClassVar[str]
    TIE: ClassVar[float]
    """Weight of popularity among history entries: 1 where history scores are whole
    numbers (popularity only breaks ties), small where they are continuous."""
    _completion: FloatArray | None = None

    def _fit_completion(self, data: TrainingData) -> None:
        popularity = recent_popularity(data, COMPLETION_HALF_LIFE_DAYS)
        self._completion = (popularity / (popularity.max(initial=0.0) + 1.0)).astype(np.float32)

    @abstractmethod
    def _plain(self, rows: sparse.csr_matrix) -> npt.NDArray[np.float64]:
        """Score of each stored entry of `rows` (in their order), from the rows alone."""

    @abstractmethod
    def _known(
        self,
        orders: npt.NDArray[np.float64],
        days_since: npt.NDArray[np.float64],
        items: IntArray,
    ) -> npt.NDArray[np.float64]:
        """Score of history entries from their distinct orders and days since the latest."""

    def score(self, rows: sparse.csr_matrix) -> FloatArray:
        """History from the rows alone: every product in a row bought once, date unknown."""
        completion = fitted(self._completion, self.name)
        checked = as_rows(rows, completion.shape[0])
        scores = np.tile(completion, (checked.shape[0], 1))
        self._place(scores, checked, self._plain(checked))
        return scores

    def score_context(self, rows: sparse.csr_matrix, context: ScoringContext) -> FloatArray:
        """History from `context` (orders and dates); products in a row that the context
        does not know score as in `score`."""
        scores = self.score(rows)
        if context.orders is None or context.last_bought is None:
            return scores
        orders = sparse.csr_matrix(context.orders, dtype=np.float64)
        latest = sparse.csr_matrix(context.last_bought, dtype=np.float64)
        orders.sort_indices()
        latest.sort_indices()
        if orders.shape != scores.shape or latest.nnz != orders.nnz:
            raise ValueError("context orders and last_bought must match the rows")
        days = (context.now - latest.data) / SECONDS_PER_DAY
        self._place(scores, orders, self._known(orders.data, days, orders.indices))
        return scores

    def _place(
        self, scores: FloatArray, pattern: sparse.csr_matrix, values: npt.NDArray[np.float64]
    ) -> None:
        """Put history `values` (one per stored entry of `pattern`) above the completion."""
        rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
        cols = pattern.indices
        completion = fitted(self._completion, self.name)
        scores[rows, cols] = (1.0 + values + self.TIE * completion[cols]).astype(np.float32)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"completion": fitted(self._completion, self.name)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> Self:
        recipe = cls(**params)
        recipe._completion = np.asarray(arrays["completion"], dtype=np.float32)
        return recipe
