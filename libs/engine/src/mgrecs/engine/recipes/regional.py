"""Regional popularity: what the customer's own region buys, smoothed towards what sells
everywhere.

Retail tastes differ by region (a product launched in one market, a local brand), and a
region's own best-sellers are a better cold answer there than the global ones. A small
region's counts are noisy, so each region's shares are pulled towards the global shares
with the weight of `smoothing` purchases: a region with few purchasers looks like the whole
company, a large one like itself. A customer of no known region gets global popularity.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, IntArray
from mgrecs.engine.recipes.base import ScoringContext, State, TrainingData
from mgrecs.engine.recipes.support import (
    as_rows,
    decay,
    fitted,
    purchase_history,
    reference_time,
)


class RegionalPopularityRecipe:
    """score(region, i) = (c_r(i) + smoothing x g(i) / G) / (N_r + smoothing): c_r counts
    the region's distinct purchasers of i (each decayed by `half_life_days` when given), N_r
    their sum, g and G the same over all customers. Scores of one row are one line of a
    (regions + 1) x products table, the last line global (`score_table`)."""

    name: ClassVar[str] = "regional-popularity"

    def __init__(self, *, smoothing: float = 100.0, half_life_days: float | None = None) -> None:
        if smoothing <= 0:
            raise ValueError("smoothing must be positive")
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        self.smoothing = smoothing
        self.half_life_days = half_life_days
        self._table: Float32Array | None = None

    def params(self) -> dict[str, Any]:
        return {"smoothing": self.smoothing, "half_life_days": self.half_life_days}

    def fit(self, data: TrainingData) -> "RegionalPopularityRecipe":
        """Counts from the matrix (one per purchaser), decayed by each purchaser's latest
        line of the product when a half-life is given."""
        weights = sparse.csr_matrix(data.matrix, dtype=np.float64)
        weights.data[:] = 1.0
        if self.half_life_days is not None:
            if data.line_time.size == 0:
                raise ValueError("recency-weighted popularity needs the order lines (line_time)")
            _, latest = purchase_history(data)
            weights = latest.copy()
            weights.data = decay(reference_time(data) - latest.data, self.half_life_days)
        n_customers = weights.shape[0]
        region = data.customer_region if data.customer_region.size else np.full(n_customers, -1)
        n_regions = int(region.max(initial=-1)) + 1
        known = np.flatnonzero(region >= 0)
        membership = sparse.csr_matrix(
            (np.ones(known.size), (region[known], known)), shape=(n_regions, n_customers)
        )
        regional = np.asarray((membership @ weights).todense(), dtype=np.float64)
        overall = np.asarray(weights.sum(axis=0), dtype=np.float64).ravel()
        total = overall.sum()
        share = overall / total if total > 0 else overall
        smoothed = (regional + self.smoothing * share) / (
            regional.sum(axis=1, keepdims=True) + self.smoothing
        )
        self._table = np.vstack([smoothed, share]).astype(np.float32)
        return self

    def score_table(
        self, rows: sparse.csr_matrix, context: ScoringContext | None
    ) -> tuple[Float32Array, IntArray]:
        """The table of every region's scores (global last) and each row's line of it:
        its region's, the global one for an unknown region (or no context)."""
        table = fitted(self._table, self.name)
        n_rows = as_rows(rows, table.shape[1]).shape[0]
        line = np.full(n_rows, table.shape[0] - 1, dtype=np.int64)
        if context is not None and context.regions is not None:
            regions = np.asarray(context.regions, dtype=np.int64)
            mine = (regions >= 0) & (regions < table.shape[0] - 1)
            line[mine] = regions[mine]
        return table, line

    def score_context(self, rows: sparse.csr_matrix, context: ScoringContext) -> Float32Array:
        table, line = self.score_table(rows, context)
        return table[line]

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """Global popularity shares for every row (no region known)."""
        table, line = self.score_table(rows, None)
        return table[line]

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"table": fitted(self._table, self.name)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "RegionalPopularityRecipe":
        recipe = cls(**params)
        recipe._table = np.asarray(arrays["table"], dtype=np.float32)
        return recipe
