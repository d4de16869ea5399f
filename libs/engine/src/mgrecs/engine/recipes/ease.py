"""EASE (Steck 2019): a linear item-item model with a closed-form solution.

One knob (the L2 penalty), no iterations, no randomness, and on sparse purchase data it is
among the strongest collaborative-filtering methods. The price is a dense items x items
matrix (items² x 12 bytes while fitting: 4.8 GB at 20,000 products) and a cubic inverse,
so it is for catalogues up to a few tens of thousands of products; `max_items` turns a
too-large catalogue into a clear error instead of an out-of-memory kill.

`min_purchasers` leaves out of the model the products fewer customers bought: their
co-purchase evidence is a handful of baskets, and on real grocery data most of the
catalogue is such a tail (Instacart's sample: 3,460 of 11,704 products have 3 or more
purchasers), so the inverse takes about 40 times fewer operations there (3,460³ against
11,704³) for about the same validation NDCG@10. Left-out products score 0 (no evidence
either way) and add nothing to a customer's scores; 1 keeps every product ever bought, which
is the plain model (a product nobody bought has a zero column of XᵀX, hence of B).
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.linalg import lapack

from mgrecs.engine.arrays import Float32Array, Float64Array, IntArray
from mgrecs.engine.recipes.base import State, TrainingData
from mgrecs.engine.recipes.support import as_rows, fitted, recency_weighted

SYMMETRISE_BLOCK = 1024
MIN_PURCHASERS = 3
"""Default `min_purchasers` (chosen on validation slices: bench/RESULTS.md)."""


def _inverse_in_place(gram: Float64Array) -> Float64Array:
    """Inverse of a symmetric positive definite matrix in its own memory (LAPACK Cholesky:
    potrf, then potri), so fitting holds one dense float64 copy rather than three."""
    # The transpose of a symmetric C-ordered array is the same matrix in Fortran order,
    # which LAPACK can overwrite.
    factor, info = lapack.dpotrf(gram.T, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        factor, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ValueError(f"EASE Gram matrix is not positive definite (LAPACK info {info})")
    inverse: Float64Array = factor
    # potri fills the upper triangle; mirror it into the lower one block by block.
    for start in range(0, inverse.shape[0], SYMMETRISE_BLOCK):
        stop = start + SYMMETRISE_BLOCK
        inverse[start:stop, :start] = inverse[:start, start:stop].T
        block = inverse[start:stop, start:stop]
        inverse[start:stop, start:stop] = np.triu(block) + np.triu(block, 1).T
    return inverse


class EASERecipe:
    """B = I - P·diag(1/diag(P)), P = (XᵀX + l2·I)⁻¹, diag(B) = 0; scores = rows @ B."""

    name: ClassVar[str] = "ease"

    def __init__(
        self,
        *,
        l2: float = 200.0,
        half_life_days: float | None = None,
        min_purchasers: int = MIN_PURCHASERS,
        max_items: int = 20_000,
    ) -> None:
        if l2 <= 0:
            raise ValueError("l2 must be positive")
        if min_purchasers < 1:
            raise ValueError("min_purchasers must be at least 1")
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        self.l2 = l2
        self.half_life_days = half_life_days
        self.min_purchasers = min_purchasers
        self.max_items = max_items
        self._weights: Float32Array | None = None
        self._items: IntArray | None = None
        """Columns of the products in the model, ascending (B's rows and columns)."""
        self._n_items = 0

    def params(self) -> dict[str, Any]:
        return {
            "l2": self.l2,
            "half_life_days": self.half_life_days,
            "min_purchasers": self.min_purchasers,
        }

    def fit(self, data: TrainingData) -> "EASERecipe":
        """Solve for B over the products with `min_purchasers` or more; refuses more of them
        than `max_items` before allocating anything dense."""
        matrix = sparse.csc_matrix(recency_weighted(data, self.half_life_days), dtype=np.float64)
        items = np.flatnonzero(np.diff(matrix.indptr) >= self.min_purchasers).astype(np.int64)
        size = items.size
        if size > self.max_items:
            raise ValueError(
                f"EASE needs a dense {size} x {size} matrix "
                f"({size**2 * 8 / 2**30:.1f} GiB); the limit is max_items={self.max_items}"
            )
        self._items, self._n_items = items, data.n_items
        if size == 0:  # nothing bought often enough to model: every product scores 0
            self._weights = np.zeros((0, 0), dtype=np.float32)
            return self
        kept = matrix[:, items].tocsr()
        gram = (kept.T @ kept).toarray()
        gram[np.diag_indices(size)] += self.l2
        weights = _inverse_in_place(gram)
        weights /= -np.diag(weights)
        weights[np.diag_indices(size)] = 0.0
        self._weights = weights.astype(np.float32)
        return self

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """rows @ B on the modelled products, 0 elsewhere; an empty row scores 0 everywhere."""
        weights, items = fitted(self._weights, self.name), fitted(self._items, self.name)
        checked = as_rows(rows, self._n_items)
        scores = np.zeros(checked.shape, dtype=np.float32)
        if items.size == self._n_items:
            scores[:] = checked @ weights
        else:
            scores[:, items] = checked[:, items] @ weights
        return scores

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "weights": fitted(self._weights, self.name),
            "items": fitted(self._items, self.name),
            "n_items": np.array([self._n_items], dtype=np.int64),
        }

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "EASERecipe":
        """A fitted recipe; model files from before `min_purchasers` hold B over every
        product and no `items`: such a model is min_purchasers=1 (and refits as one)."""
        recipe = cls(**params)
        recipe._weights = np.asarray(arrays["weights"], dtype=np.float32)
        size = recipe._weights.shape[0]
        if "items" not in arrays:
            recipe.min_purchasers = 1
        recipe._items = np.asarray(arrays.get("items", np.arange(size)), dtype=np.int64)
        recipe._n_items = int(arrays["n_items"][0]) if "n_items" in arrays else size
        return recipe
