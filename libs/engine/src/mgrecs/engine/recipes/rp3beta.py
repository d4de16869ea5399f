"""RP3beta (Paudel et al. 2017; Dacrema et al. 2019): a three-step random walk
customer -> product -> customer -> product, with popular products penalised.

In Dacrema et al.'s reproducibility study it matched or beat most neural recommenders. On
retail data its `beta` is the useful knob: it trades the pull of best-sellers (which a
random walk naturally lands on) against long-tail relevance, which matters when
recommendations should not all be the same top sellers.

`history_idf` applies the same idea to the customer's side: a purchase of a best-seller says
little about someone's own taste (everybody buys it), one of a niche product says much. With
it, the customer's row is their distinct products, each weighted purchasers^-history_idf and
summing to 1, so the scores are a distribution of the same size for every customer (which
also lets a blend mix them with popularity in a fixed proportion). Validation decides.

`profile_weight` adds second-order similarity: two products that are neighbours of the same
products (the cosine of their columns of W, their "in-neighbour profiles") are alike even
when few customers bought both, which is where a graph learnt from few purchases is
thinnest. Each product's row gains its `profile_neighbours` most similar profiles, scaled to
`profile_weight` times the row's own mass, so the knob means the same on every data set; 0
is plain RP3beta. (Columns scored above rows, and a profile list longer than `neighbours`
above an equal one, on the generator's validation slices.)
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array
from mgrecs.engine.recipes.base import State, TrainingData
from mgrecs.engine.recipes.neighbours import neighbour_graph
from mgrecs.engine.recipes.support import (
    as_rows,
    csr_from_state,
    csr_state,
    fitted,
    recency_weighted,
)


def _profile_similarity(weights: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """Top-k cosine similarity of the columns of `weights` (products that are neighbours of
    the same products), each row rescaled to the row sum of `weights`; built block-wise and
    pruned like W itself, so it stays sparse on large catalogues."""
    columns = sparse.csr_matrix(weights.T, dtype=np.float64)
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=1)).ravel())
    unit = sparse.csr_matrix(
        sparse.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ columns
    )
    cosine = neighbour_graph(unit, unit.T.tocsr(), k, lambda row, col, val: val)
    mass = np.asarray(weights.sum(axis=1), dtype=np.float64).ravel()
    cosine_mass = np.asarray(cosine.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(mass, cosine_mass, out=np.zeros_like(mass), where=cosine_mass > 0)
    return sparse.csr_matrix(sparse.diags(scale) @ cosine, dtype=np.float32)


def _row_stochastic(matrix: sparse.csr_matrix, alpha: float) -> sparse.csr_matrix:
    """Each row divided by its sum (empty rows stay empty), then raised to `alpha`."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scaled = sparse.csr_matrix(
        sparse.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ matrix
    )
    scaled.data = np.power(scaled.data, alpha)
    return scaled


class RP3BetaRecipe:
    """W_ij = (P_iu @ P_ui)_ij / popularity_j^beta with transition probabilities raised to
    `alpha`, top `neighbours` per item, plus `profile_weight` times the top
    `profile_neighbours` cosine similarities of its columns; scores = rows @ W."""

    name: ClassVar[str] = "rp3beta"

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        beta: float = 0.5,
        neighbours: int = 100,
        half_life_days: float | None = None,
        history_idf: float | None = None,
        profile_weight: float = 0.0,
        profile_neighbours: int = 100,
    ) -> None:
        if alpha <= 0 or beta < 0 or neighbours < 1:
            raise ValueError("alpha must be > 0, beta >= 0 and neighbours >= 1")
        if history_idf is not None and history_idf < 0:
            raise ValueError("history_idf must be >= 0 (or None for the rows as they are)")
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        if profile_weight < 0 or profile_neighbours < 1:
            raise ValueError("profile_weight must be >= 0 and profile_neighbours >= 1")
        self.half_life_days = half_life_days
        self.alpha = alpha
        self.beta = beta
        self.neighbours = neighbours
        self.history_idf = history_idf
        self.profile_weight = profile_weight
        self.profile_neighbours = profile_neighbours
        self._weights: sparse.csr_matrix | None = None
        self._row_weights: Float32Array | None = None

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "neighbours": self.neighbours,
            "half_life_days": self.half_life_days,
            "history_idf": self.history_idf,
            "profile_weight": self.profile_weight,
            "profile_neighbours": self.profile_neighbours,
        }

    def fit(self, data: TrainingData) -> "RP3BetaRecipe":
        matrix = sparse.csr_matrix(recency_weighted(data, self.half_life_days), dtype=np.float64)
        user_to_item = _row_stochastic(matrix, self.alpha)
        item_to_user = _row_stochastic(matrix.T.tocsr(), self.alpha)
        purchasers = np.diff(sparse.csc_matrix(matrix).indptr).astype(np.float64)
        penalty = np.power(np.maximum(purchasers, 1.0), -self.beta)

        def damp(
            row: npt.NDArray[np.int64], col: npt.NDArray[np.int64], val: npt.NDArray[np.float64]
        ) -> npt.NDArray[np.float64]:
            damped: npt.NDArray[np.float64] = val * penalty[col]
            return damped

        weights = neighbour_graph(item_to_user, user_to_item, self.neighbours, damp)
        if self.profile_weight > 0:
            profile = _profile_similarity(weights, self.profile_neighbours)
            weights = sparse.csr_matrix(weights + self.profile_weight * profile, dtype=np.float32)
        self._weights = weights
        self._row_weights = (
            None
            if self.history_idf is None
            else np.power(np.maximum(purchasers, 1.0), -self.history_idf).astype(np.float32)
        )
        return self

    def _history(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        """The rows as scored: as given, or (`history_idf`) distinct products weighted by
        purchasers^-history_idf, each row summing to 1."""
        if self._row_weights is None:
            return rows
        history = sparse.csr_matrix(rows, copy=True)
        history.data = (history.data != 0).astype(np.float32) * self._row_weights[history.indices]
        sums = np.asarray(history.sum(axis=1), dtype=np.float32).ravel()
        inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        return sparse.csr_matrix(sparse.diags(inverse) @ history, dtype=np.float32)

    def score_sparse(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        """rows @ W kept sparse: only products reachable through the neighbour graph are
        stored, so a 100,000-product catalogue is ranked from a few hundred candidates per
        customer instead of a dense row (what batch inference over millions needs)."""
        weights = fitted(self._weights, self.name)
        return sparse.csr_matrix(self._history(as_rows(rows, weights.shape[0])) @ weights)

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """rows @ W, dense; an empty row scores 0 everywhere."""
        scores: Float32Array = self.score_sparse(rows).toarray()
        return scores

    def state(self) -> dict[str, npt.NDArray[Any]]:
        arrays = csr_state(fitted(self._weights, self.name), "weights")
        if self._row_weights is not None:
            arrays["row_weights"] = self._row_weights
        return arrays

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "RP3BetaRecipe":
        recipe = cls(**params)
        recipe._weights = csr_from_state(arrays, "weights")
        if recipe.history_idf is not None:
            recipe._row_weights = np.asarray(arrays["row_weights"], dtype=np.float32)
        return recipe
