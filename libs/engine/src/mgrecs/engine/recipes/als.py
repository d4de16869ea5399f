"""ALS for implicit feedback (Hu, Koren & Volinsky 2008), via the `implicit` library.

Latent factors generalise beyond direct co-purchases (customers who never shared a product
can still look alike), and the model is small (factors per product) at any catalogue size,
so this is the recipe that scales to millions of customers. Purchase data is thin, so the
confidence weights stay weak (1 + alpha x weight, alpha of a few units). `regularization`
is absolute, not scaled by the data: set far above the confidence mass it flattens every
customer into the popularity direction, so tune it with `alpha` on validation.

Fold-in: `score(rows)` always recomputes each row's customer factors from the rows with the
exact least-squares solve given the item factors (implicit's `recalculate_user`, a Cholesky
solve per row), never the factors stored at training. A customer in training and the same
customer rebuilt from events therefore score identically, and unseen customers fold in with
no retrain.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from implicit.cpu.als import AlternatingLeastSquares
from scipy import sparse
from threadpoolctl import threadpool_limits

from mgrecs.engine.arrays import Float32Array
from mgrecs.engine.recipes.base import State, TrainingData
from mgrecs.engine.recipes.support import as_rows, fitted, recency_weighted


def _confidence(rows: sparse.csr_matrix, alpha: float) -> sparse.csr_matrix:
    """Hu et al.'s confidence 1 + alpha x weight on the stored entries (implicit takes the
    confidence itself as the matrix value)."""
    confidence = sparse.csr_matrix(rows, dtype=np.float32, copy=True)
    confidence.data = (1.0 + alpha * confidence.data).astype(np.float32)
    return confidence


class ALSRecipe:
    """implicit's CPU ALS (conjugate-gradient training, fixed seed); scores = U(rows) @ Vᵀ."""

    name: ClassVar[str] = "als"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 20.0,
        alpha: float = 5.0,
        iterations: int = 15,
        half_life_days: float | None = None,
        random_state: int = 42,
        num_threads: int = 0,
    ) -> None:
        """`num_threads` (0: all cores) only changes speed: every customer's and product's
        factors are solved independently, and BLAS runs single-threaded, so results match."""
        if factors < 1 or iterations < 1 or regularization <= 0 or alpha < 0:
            raise ValueError("factors, iterations >= 1; regularization > 0; alpha >= 0")
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        self.half_life_days = half_life_days
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self._model: AlternatingLeastSquares | None = None

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "half_life_days": self.half_life_days,
            "random_state": self.random_state,
        }

    def fit(self, data: TrainingData) -> "ALSRecipe":
        # implicit asks for single-threaded BLAS (its own threads do the work); it also keeps
        # BLAS reductions in one fixed order, which keeps repeated fits bit-identical.
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._implicit_model()
            training = recency_weighted(data, self.half_life_days)
            model.fit(_confidence(training, self.alpha), show_progress=False)
        self._model = model
        return self

    def _implicit_model(self) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            dtype=np.float32,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """Factors solved from each row, times the item factors; an empty row scores 0."""
        model = fitted(self._model, self.name)
        item_factors = np.asarray(model.item_factors, dtype=np.float32)
        checked = as_rows(rows, item_factors.shape[0])
        if checked.shape[0] == 0:
            return np.zeros((0, item_factors.shape[0]), dtype=np.float32)
        scores = np.empty((checked.shape[0], item_factors.shape[0]), dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            user_factors = np.asarray(
                model.recalculate_user(
                    np.arange(checked.shape[0]), _confidence(checked, self.alpha)
                ),
                dtype=np.float32,
            )
            # One matrix-vector product per row, not one matrix product: BLAS blocks a
            # matrix product by the number of rows, which changes a row's last bits, and
            # a customer must score the same alone (real time) as in a batch.
            for row, factors in enumerate(user_factors):
                np.dot(item_factors, factors, out=scores[row])
        return scores

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """The item factors: scoring solves each row's own factors from them."""
        return {"item_factors": np.asarray(fitted(self._model, self.name).item_factors)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "ALSRecipe":
        recipe = cls(**params)
        model = recipe._implicit_model()
        model.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        recipe._model = model
        return recipe
