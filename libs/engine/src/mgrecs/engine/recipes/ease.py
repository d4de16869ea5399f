"""EASE (Steck 2019): a linear item-item model with a closed-form solution.

One knob (the L2 penalty), no iterations, no randomness, and on sparse purchase data it is
among the strongest collaborative-filtering methods. The price is a dense items x items
matrix (items² x 12 bytes while fitting: 4.8 GB at 20,000 products), so it is for
catalogues up to a few tens of thousands of products; `max_items` turns a too-large
catalogue into a clear error instead of an out-of-memory kill.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.linalg import lapack

from mgrecs.engine.arrays import Float32Array, Float64Array
from mgrecs.engine.recipes.base import State, TrainingData
from mgrecs.engine.recipes.support import as_rows, fitted, recency_weighted

SYMMETRISE_BLOCK = 1024


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
        self, *, l2: float = 200.0, half_life_days: float | None = None, max_items: int = 20_000
    ) -> None:
        if l2 <= 0:
            raise ValueError("l2 must be positive")
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        self.l2 = l2
        self.half_life_days = half_life_days
        self.max_items = max_items
        self._weights: Float32Array | None = None

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "half_life_days": self.half_life_days}

    def fit(self, data: TrainingData) -> "EASERecipe":
        """Solve for B; refuses catalogues above `max_items` before allocating anything."""
        n_items = data.n_items
        if n_items > self.max_items:
            raise ValueError(
                f"EASE needs a dense {n_items} x {n_items} matrix "
                f"({n_items**2 * 8 / 2**30:.1f} GiB); the limit is max_items={self.max_items}"
            )
        matrix = sparse.csr_matrix(recency_weighted(data, self.half_life_days), dtype=np.float64)
        gram = (matrix.T @ matrix).toarray()
        gram[np.diag_indices(n_items)] += self.l2
        weights = _inverse_in_place(gram)
        weights /= -np.diag(weights)
        weights[np.diag_indices(n_items)] = 0.0
        self._weights = weights.astype(np.float32)
        return self

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """rows @ B; an empty row scores 0 everywhere."""
        weights = fitted(self._weights, self.name)
        scores: Float32Array = np.asarray(as_rows(rows, weights.shape[0]) @ weights)
        return scores

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"weights": fitted(self._weights, self.name)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "EASERecipe":
        recipe = cls(**params)
        recipe._weights = np.asarray(arrays["weights"], dtype=np.float32)
        return recipe
