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
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, Float64Array, IntArray
from mgrecs.engine.recipes.base import ScoringContext, State, TrainingData
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


def recent_popularity(data: TrainingData, half_life_days: float) -> Float64Array:
    """Distinct purchasers per product, each decayed by the age of their latest purchase of
    it; the matrix's purchaser counts when there are no order lines."""
    if data.line_time.size == 0:
        purchasers = np.diff(sparse.csc_matrix(data.matrix).indptr)
        return np.asarray(purchasers, dtype=np.float64)
    items, latest, _ = distinct_pairs(
        data.line_customer, data.line_item, data.line_time, data.n_items
    )
    weights = decay(reference_time(data) - latest, half_life_days)
    return np.bincount(items, weights=weights, minlength=data.n_items).astype(np.float64)


class HistoryFirst(ABC):
    """Subclasses say how a history entry scores (`_plain`, `_known`), both >= 0; this
    class puts history entries at 1 + that score + `TIE` x popularity (the tie-break), and
    every other product at its popularity share in [0, 1)."""

    name: ClassVar[str]
    uses_history: ClassVar[bool] = True
    """Scores better with the customers' order counts and dates (`support.uses_history`)."""
    TIE: ClassVar[float]
    """Weight of popularity among history entries: 1 where history scores are whole
    numbers (popularity only breaks ties), small where they are continuous."""
    _popularity: Float32Array | None = None
    """Recent popularity as a share below 1 (the top product's count / (that count + 1))."""

    def _fit_popularity(self, data: TrainingData) -> None:
        popularity = recent_popularity(data, COMPLETION_HALF_LIFE_DAYS)
        self._popularity = (popularity / (popularity.max(initial=0.0) + 1.0)).astype(np.float32)

    @abstractmethod
    def _plain(self, rows: sparse.csr_matrix) -> Float64Array:
        """Score of each stored entry of `rows` (in their order), from the rows alone."""

    @abstractmethod
    def _known(
        self,
        orders: Float64Array,
        days_since: Float64Array,
        items: IntArray,
    ) -> Float64Array:
        """Score of history entries from their distinct orders and days since the latest."""

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """History from the rows alone: every product in a row bought once, date unknown."""
        checked = as_rows(rows, fitted(self._popularity, self.name).shape[0])
        return self._ranked(checked, History.of(checked, self._plain(checked)))

    def score_context(self, rows: sparse.csr_matrix, context: ScoringContext) -> Float32Array:
        """History from `context` (orders and dates); products in a row that the context
        does not know score as in `score`."""
        checked = as_rows(rows, fitted(self._popularity, self.name).shape[0])
        history = History.of(checked, self._plain(checked))
        if context.orders is not None and context.last_bought is not None:
            orders = sparse.csr_matrix(context.orders, dtype=np.float64)
            latest = sparse.csr_matrix(context.last_bought, dtype=np.float64)
            orders.sort_indices()
            latest.sort_indices()
            if orders.shape != checked.shape or latest.nnz != orders.nnz:
                raise ValueError("context orders and last_bought must match the rows")
            days = (context.now - latest.data) / SECONDS_PER_DAY
            known = History.of(orders, self._known(orders.data, days, orders.indices))
            history = history.updated(known, checked.shape[1])
        return self._ranked(checked, history)

    def _ranked(self, rows: sparse.csr_matrix, history: "History") -> Float32Array:
        """Dense scores of `rows`: history entries at 1 + their value, popularity behind."""
        popularity = fitted(self._popularity, self.name)
        scores = np.tile(popularity, (rows.shape[0], 1))
        cols = history.cols
        scores[history.rows, cols] = 1.0 + history.values + self.TIE * popularity[cols]
        return scores

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"popularity": fitted(self._popularity, self.name)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> Self:
        recipe = cls(**params)
        recipe._popularity = np.asarray(arrays["popularity"], dtype=np.float32)
        return recipe


@dataclass(frozen=True)
class History:
    """Scored history entries as parallel arrays (kept apart from sparse arithmetic, which
    would drop an entry whose score is 0)."""

    rows: IntArray
    cols: IntArray
    values: Float64Array

    @classmethod
    def of(cls, pattern: sparse.csr_matrix, values: Float64Array) -> "History":
        """The stored entries of a CSR `pattern`, holding `values` (one per entry, in order)."""
        rows = np.repeat(np.arange(pattern.shape[0], dtype=np.int64), np.diff(pattern.indptr))
        return cls(rows, pattern.indices.astype(np.int64), np.asarray(values, np.float64))

    def updated(self, newer: "History", n_cols: int) -> "History":
        """These entries with `newer`'s values where it has the same (row, column)."""
        keep = ~np.isin(self.rows * n_cols + self.cols, newer.rows * n_cols + newer.cols)
        return History(
            np.concatenate([self.rows[keep], newer.rows]),
            np.concatenate([self.cols[keep], newer.cols]),
            np.concatenate([self.values[keep], newer.values]),
        )
