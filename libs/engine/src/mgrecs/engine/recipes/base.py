"""What every user-personalization recipe is: fit on a customer x product matrix, then score
any customers' purchase rows against every product.

Scoring takes purchase *rows* rather than customer indices, so the same call serves batch
inference (rows of the training matrix), evaluation (rows of a train split) and real time
(a row built from one customer's fresh events, no retrain).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, Float64Array, IntArray

State = Mapping[str, npt.NDArray[Any]]
"""A fitted recipe's state as named numpy arrays: storable in an .npz without pickle."""


@dataclass(frozen=True)
class TrainingData:
    """What a recipe may learn from. Rows and columns are indices fixed by the caller."""

    matrix: sparse.csr_matrix
    """customers x products, float32, one entry per (customer, product): its weight
    (log1p of the quantity, optionally decayed by recency)."""
    line_customer: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    line_item: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    line_time: Float64Array = field(default_factory=lambda: np.zeros(0, np.float64))
    """Each order line as parallel arrays (epoch seconds); time-aware recipes use them."""
    customer_region: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Region index per customer (-1 unknown); region-aware recipes use it."""
    now: float = 0.0
    """Epoch seconds of "now" for recency (the end of the training period)."""

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])


class Recipe(Protocol):
    """A user-personalization recipe; one module per recipe under `mgrecs.engine.recipes`."""

    name: ClassVar[str]

    def fit(self, data: TrainingData) -> "Recipe":
        """Learn from `data`; returns self."""
        ...

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """Dense (len(rows) x n_items) scores, higher is better, for customers whose
        purchases are `rows` (same columns as the training matrix). Not filtered: callers
        exclude purchased items and apply rules. Raw scale (not yet 0..1)."""
        ...

    def params(self) -> dict[str, Any]:
        """Hyper-parameters, for reports and model metadata."""
        ...

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted state as arrays (sparse matrices as data/indices/indptr/shape), so a
        model file can store the recipe; raises if not fitted."""
        ...

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "Recipe":
        """A fitted recipe rebuilt from `params()` and `state()`, without refitting: it
        scores exactly like the one that was saved."""
        ...


@runtime_checkable
class SparseScoring(Protocol):
    """A recipe whose scores are sparse (a neighbour graph): batch inference ranks each
    customer's few hundred stored candidates instead of a dense row over the catalogue."""

    def score_sparse(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        """`score(rows)` as CSR, at most one entry per (row, column) (as a sparse product
        gives); every item not stored scores 0."""
        ...


@dataclass(frozen=True)
class ScoringContext:
    """What a caller may know of the customers it scores beyond their binary purchase rows,
    one entry per row. Recipes that implement `ContextScoring` use it (regional popularity
    the regions, buy-again the order counts and dates); every other recipe ignores it.
    Evaluation builds it from the training lines, the model from what it stores."""

    regions: IntArray | None = None
    """Region index per row (-1 unknown)."""
    orders: sparse.csr_matrix | None = None
    """Per (row, product): how many distinct orders contained it."""
    last_bought: sparse.csr_matrix | None = None
    """Per (row, product): epoch seconds of its latest purchase (same pattern as `orders`)."""
    now: float = 0.0
    """Epoch seconds of the request: what "how long ago" is measured from."""

    def take(self, start: int, stop: int) -> "ScoringContext":
        """The context of rows start..stop (a chunk of the rows it was built for)."""
        return ScoringContext(
            regions=None if self.regions is None else self.regions[start:stop],
            orders=None if self.orders is None else self.orders[start:stop],
            last_bought=None if self.last_bought is None else self.last_bought[start:stop],
            now=self.now,
        )


@runtime_checkable
class ContextScoring(Protocol):
    """A recipe whose scores use more than the purchase rows (see `ScoringContext`). Its
    plain `score(rows)` still works, with what the rows alone tell."""

    def score_context(self, rows: sparse.csr_matrix, context: ScoringContext) -> Float32Array:
        """`score(rows)`, knowing `context` (one entry per row)."""
        ...


@runtime_checkable
class TableScoring(Protocol):
    """A non-personalised recipe: every row's scores are one line of a small table (one
    line for all, or one per region). A blend takes a few hundred top products of each line
    as candidates, so it can still score sparsely."""

    def score_table(
        self, rows: sparse.csr_matrix, context: ScoringContext | None
    ) -> tuple[Float32Array, IntArray]:
        """(lines x n_items table, the line of each row): `score` is table[line]."""
        ...


@runtime_checkable
class ContextSparseScoring(Protocol):
    """A `SparseScoring` recipe whose sparse scores also use a `ScoringContext`."""

    def score_sparse_context(
        self, rows: sparse.csr_matrix, context: ScoringContext
    ) -> sparse.csr_matrix:
        """`score_sparse(rows)`, knowing `context` (one entry per row)."""
        ...
