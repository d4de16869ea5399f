"""The shared half of the non-personalised recipes (popularity, trending): one score vector,
the same for every customer, stored as the recipe's whole state."""

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, IntArray
from mgrecs.engine.recipes.base import ScoringContext, State
from mgrecs.engine.recipes.support import as_rows, fitted


class UniformScores:
    """Subclasses set `self._scores` in `fit` and take their params as keyword arguments."""

    name: ClassVar[str]
    _scores: Float32Array | None = None

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """The same scores for every row (empty rows included)."""
        scores = fitted(self._scores, self.name)
        checked = as_rows(rows, scores.shape[0])
        return np.tile(scores, (checked.shape[0], 1))

    def score_table(
        self, rows: sparse.csr_matrix, context: ScoringContext | None
    ) -> tuple[Float32Array, IntArray]:
        """One line, every row's (see `TableScoring`)."""
        scores = fitted(self._scores, self.name)
        n_rows = as_rows(rows, scores.shape[0]).shape[0]
        return scores[np.newaxis, :], np.zeros(n_rows, dtype=np.int64)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"scores": fitted(self._scores, self.name)}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> Self:
        recipe = cls(**params)
        recipe._scores = np.asarray(arrays["scores"], dtype=np.float32)
        return recipe
