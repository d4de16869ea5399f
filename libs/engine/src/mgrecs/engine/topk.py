"""Each customer's k best items from a block of scores, for all customers of the block at once.

Batch inference ranks a million customers over a 100,000-product catalogue: a dense score
row and a Python loop per customer cost minutes per million, so the ranking works on a whole
block of customers with a few numpy passes. A recipe that scores sparsely (a neighbour
graph) gives a few hundred stored candidates per customer; a dense block is cut to each
row's k-th best value first. Either way the order is the same: higher score first, then the
lower item index; only positive scores of allowed, not excluded items count.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray, UIntArray

_LOW_BITS = np.uint64(0xFFFF_FFFF)
_ROW_SHIFT = np.uint64(32)


@dataclass(frozen=True)
class TopK:
    """Per row, its best items, best first: row r's are `items[indptr[r]:indptr[r + 1]]`."""

    indptr: IntArray
    items: IntArray
    scores: Float64Array
    """The raw score of each of `items`."""

    def owners(self) -> IntArray:
        """The row of each of `items`."""
        rows: IntArray = np.repeat(np.arange(self.indptr.shape[0] - 1), np.diff(self.indptr))
        return rows


def sparse_top_k(
    scores: sparse.csr_matrix, k: int, allowed: BoolArray, excluded: sparse.csr_matrix | None
) -> TopK:
    """Each row's k best stored scores (at most one stored per row and column) among
    `allowed` columns, without the entries stored in `excluded` (same shape: e.g. the
    customers' purchases)."""
    n_rows = scores.shape[0]
    col = scores.indices
    val = scores.data
    # (row, then the score rounded to float32, descending) in one 64-bit key: a positive
    # float's bits order like the float, and rounding never reverses an order.
    row_keys = (np.arange(n_rows, dtype=np.uint64) << _ROW_SHIFT) + _LOW_BITS
    bits = np.asarray(val, dtype=np.float32).view(np.uint32).astype(np.uint64)
    key: UIntArray = np.repeat(row_keys, np.diff(scores.indptr)) - bits
    wanted = val > 0
    if not allowed.all():
        wanted &= allowed[col]
    if not wanted.all():
        key, col, val = key[wanted], col[wanted], val[wanted]
    # At most one excluded entry per excluded item can rank above a row's k-th best.
    limit = np.full(n_rows, k, dtype=np.int64)
    if excluded is not None:
        limit += np.diff(excluded.indptr)
    key, col, val = _near_top(key, col, val, limit)
    row = (key >> _ROW_SHIFT).astype(np.int64)
    col = col.astype(np.int64)
    if excluded is not None and excluded.nnz:
        kept = ~_stored_in(excluded, row, col)
        row, col, val = row[kept], col[kept], val[kept]
    return _rank(row, col, val.astype(np.float64), n_rows, k)


def dense_top_k(
    scores: Float64Array, k: int, allowed: BoolArray, excluded: sparse.csr_matrix | None
) -> TopK:
    """`sparse_top_k` of a dense block of scores (every item scored)."""
    scores = np.where(allowed & (scores > 0), scores, 0.0)  # NaN and negatives: no hit
    if excluded is not None and excluded.nnz:
        scores[_stored_rows(excluded), excluded.indices] = 0.0
    n_rows, n_cols = scores.shape
    keep = scores > 0
    if n_cols > k:
        kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
        keep &= scores >= kth[:, None]
    row, col = np.nonzero(keep)
    return _rank(row.astype(np.int64), col.astype(np.int64), scores[row, col], n_rows, k)


def _near_top(
    key: UIntArray, col: npt.NDArray[np.int32], val: npt.NDArray[np.floating], limit: IntArray
) -> tuple[UIntArray, npt.NDArray[np.int32], npt.NDArray[np.floating]]:
    """The entries (grouped by row, as in CSR) whose key is within their row's `limit`
    best keys, ties included: the exact `limit` best values with theirs, since the exact
    limit-th value rounds to the limit-th rounded value and nothing below that is close.
    One sort of the keys is many times faster than sorting by (row, value, column)."""
    n_rows = limit.shape[0]
    ordered = np.sort(key)
    bounds = np.searchsorted(ordered, np.arange(n_rows + 1, dtype=np.uint64) << _ROW_SHIFT)
    counts = np.diff(bounds)
    full = counts > limit
    if not full.any():
        return key, col, val
    threshold = np.full(n_rows, np.iinfo(np.uint64).max, dtype=np.uint64)
    threshold[full] = ordered[bounds[:-1][full] + limit[full] - 1]
    kept = np.flatnonzero(key <= np.repeat(threshold, counts))
    return key[kept], col[kept], val[kept]


def _rank(row: IntArray, col: IntArray, val: Float64Array, n_rows: int, k: int) -> TopK:
    """Each row's k best of a few candidate entries (positive values, grouped or not)."""
    order = np.lexsort((col, -val, row))
    row, col, val = row[order], col[order], val[order]
    counts = np.bincount(row, minlength=n_rows)
    starts = np.cumsum(counts) - counts
    kept = np.arange(row.shape[0]) - np.repeat(starts, counts) < k
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.minimum(counts, k), out=indptr[1:])
    return TopK(indptr, col[kept], val[kept])


def _stored_in(matrix: sparse.csr_matrix, row: IntArray, col: IntArray) -> BoolArray:
    """Whether each (row, col) is a stored entry of `matrix`."""
    if matrix.nnz == 0:
        return np.zeros(row.shape[0], dtype=bool)
    n_cols = matrix.shape[1]
    stored = np.sort(_stored_rows(matrix) * n_cols + matrix.indices)
    wanted = row * n_cols + col
    position = np.minimum(np.searchsorted(stored, wanted), stored.shape[0] - 1)
    found: BoolArray = stored[position] == wanted
    return found


def _stored_rows(matrix: sparse.csr_matrix) -> IntArray:
    """The row of each stored entry of a CSR matrix."""
    rows: IntArray = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows
