"""Small pieces every recipe needs: checking score rows, the fitted state, time decay.

Kept apart from `base.py` (the fixed interface) so recipes share one definition of "a valid
row" and of recency, and batch, evaluation and real time all see the same behaviour.
"""

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float32Array, Float64Array, IntArray
from mgrecs.engine.recipes.base import (
    ContextScoring,
    ContextSparseScoring,
    Recipe,
    ScoringContext,
    SparseScoring,
    State,
    TrainingData,
)

SECONDS_PER_DAY = 86_400.0

T = TypeVar("T")


def fitted(state: T | None, recipe: str) -> T:
    """The state `fit` produced, or a clear error if `score` comes first."""
    if state is None:
        raise RuntimeError(f"recipe {recipe!r} is not fitted: call fit(data) before score(rows)")
    return state


def as_rows(rows: sparse.csr_matrix, n_items: int) -> sparse.csr_matrix:
    """`rows` as float32 CSR with sorted indices, checked against the trained catalogue."""
    if rows.ndim != 2 or rows.shape[1] != n_items:
        raise ValueError(f"rows have {rows.shape[1]} columns, the recipe was fitted on {n_items}")
    checked = sparse.csr_matrix(rows, dtype=np.float32)
    checked.sort_indices()
    return checked


def reference_time(data: TrainingData) -> float:
    """`data.now`, or the newest order line when the caller left it unset (0)."""
    if data.now:
        return float(data.now)
    return float(data.line_time.max()) if data.line_time.size else 0.0


def decay(age_seconds: Float64Array, half_life_days: float) -> Float64Array:
    """Weight 1 now, 1/2 after one half-life; future times (clock skew) count as now."""
    weights: Float64Array = np.power(
        0.5, np.maximum(age_seconds, 0.0) / (half_life_days * SECONDS_PER_DAY)
    )
    return weights


def recency_weighted(data: TrainingData, half_life_days: float | None) -> sparse.csr_matrix:
    """The training matrix with each (customer, product) entry multiplied by the decay of
    that pair's latest order line (`decay`); the matrix itself when `half_life_days` is None.

    On data whose tastes drift (new releases, seasons), recent co-purchases say more about
    what sells next than old ones; validation decides whether a recipe uses it.
    """
    matrix = sparse.csr_matrix(data.matrix, dtype=np.float32)
    if half_life_days is None:
        return matrix
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive (or None for no decay)")
    if data.line_time.size == 0:
        raise ValueError("recency weighting needs the order lines (line_time)")
    n_items = data.n_items
    key, time, last = _lines_by_pair(data.line_customer, data.line_item, data.line_time, n_items)
    weights = decay(reference_time(data) - time[last], half_life_days)
    factors = sparse.csr_matrix(
        (weights.astype(np.float32), (key[last] // n_items, key[last] % n_items)),
        shape=matrix.shape,
    )
    weighted = sparse.csr_matrix(matrix.multiply(factors), dtype=np.float32)
    weighted.eliminate_zeros()
    weighted.sort_indices()
    return weighted


def _lines_by_pair(
    customer: IntArray,
    item: IntArray,
    time: Float64Array,
    n_items: int,
) -> tuple[IntArray, Float64Array, BoolArray]:
    """Order lines sorted by (customer, item) pair, then time: the pair keys
    (customer x n_items + item), the times, and a mask of each pair's latest line."""
    key = customer * n_items + item
    order = np.lexsort((time, key))
    key, time = key[order], time[order]
    return key, time, np.r_[key[1:] != key[:-1], True]


def distinct_pairs(
    customer: IntArray,
    item: IntArray,
    time: Float64Array,
    n_items: int,
) -> tuple[IntArray, Float64Array, IntArray]:
    """Each distinct (customer, item) pair of some order lines: its item, the time of its
    latest line and how many distinct line times (orders) it has."""
    if customer.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64)
    key, time, last = _lines_by_pair(customer, item, time, n_items)
    new_time = np.r_[True, (key[1:] != key[:-1]) | (time[1:] != time[:-1])]
    pair_of_line = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
    orders = np.bincount(pair_of_line, weights=new_time).astype(np.int64)
    return key[last] % n_items, time[last], orders


def csr_state(matrix: sparse.csr_matrix, name: str) -> dict[str, npt.NDArray[Any]]:
    """A CSR matrix as the arrays `csr_from_state` rebuilds it from, keys prefixed `name.`."""
    return {
        f"{name}.data": matrix.data,
        f"{name}.indices": matrix.indices,
        f"{name}.indptr": matrix.indptr,
        f"{name}.shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_state(arrays: State, name: str) -> sparse.csr_matrix:
    """The CSR matrix `csr_state` stored, with the same dtype and index order."""
    shape = arrays[f"{name}.shape"]
    return sparse.csr_matrix(
        (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]),
        shape=(int(shape[0]), int(shape[1])),
    )


def score_rows(
    recipe: Recipe, rows: sparse.csr_matrix, context: ScoringContext | None
) -> Float32Array:
    """The recipe's scores of `rows`, with `context` when the recipe uses one: the one call
    evaluation, batch and real time score through."""
    if context is not None and isinstance(recipe, ContextScoring):
        return recipe.score_context(rows, context)
    return recipe.score(rows)


def sparse_scores(
    recipe: SparseScoring, rows: sparse.csr_matrix, context: ScoringContext | None
) -> sparse.csr_matrix:
    """`score_rows` of a recipe that scores sparsely, as CSR (its stored candidates)."""
    if context is not None and isinstance(recipe, ContextSparseScoring):
        return recipe.score_sparse_context(rows, context)
    return recipe.score_sparse(rows)


def uses_history(recipe: Recipe) -> bool:
    """Whether `recipe` scores better with the customers' order counts and dates in its
    `ScoringContext` (a recipe says so with a true `uses_history` attribute: the repeat
    recipes, a blend with one of them), so the served model must keep them."""
    return bool(getattr(recipe, "uses_history", False))


def purchase_history(data: TrainingData) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """From the order lines, per (customer, product) of the training matrix: how many
    distinct orders (line times) contained it, and the epoch seconds of the latest."""
    shape = data.matrix.shape
    if data.line_time.size == 0:
        empty = sparse.csr_matrix(shape, dtype=np.float64)
        return empty, empty.copy()
    n_items = data.n_items
    key, time, last = _lines_by_pair(data.line_customer, data.line_item, data.line_time, n_items)
    new_time = np.r_[True, (key[1:] != key[:-1]) | (time[1:] != time[:-1])]
    pair_of_line = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
    orders = np.bincount(pair_of_line, weights=new_time)
    rows, cols = key[last] // n_items, key[last] % n_items
    counts = sparse.csr_matrix((orders, (rows, cols)), shape=shape, dtype=np.float64)
    latest = sparse.csr_matrix((time[last], (rows, cols)), shape=shape, dtype=np.float64)
    counts.sort_indices()
    latest.sort_indices()
    return counts, latest


def history_context(data: TrainingData, customers: IntArray) -> ScoringContext:
    """The scoring context of training customers (rows of `data.matrix`) as of `data.now`:
    their regions, and their order counts and latest purchase dates per product."""
    counts, latest = purchase_history(data)
    regions = data.customer_region[customers] if data.customer_region.size else None
    return ScoringContext(
        regions=regions,
        orders=counts[customers],
        last_bought=latest[customers],
        now=reference_time(data),
    )
