"""Sparse item-item neighbour graphs: a product of two sparse matrices, re-weighted, with
only the `k` strongest off-diagonal entries kept per row.

Item-kNN and RP3beta differ only in what they multiply and how they weigh it; both must
stay sparse for 100,000-product catalogues, so the product is computed a block of rows at a
time and pruned before the next block.
"""

from collections.abc import Callable

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray

CHUNK_ENTRIES = 4_000_000
"""Upper bound (estimated) on product entries materialised at once."""

Weigh = Callable[
    [IntArray, IntArray, Float64Array],
    Float64Array,
]
"""(row, column, value) arrays of product entries -> their new values."""


def _top_k(
    row: IntArray,
    col: IntArray,
    val: Float64Array,
    k: int,
) -> BoolArray:
    """Mask of the `k` largest positive values per row (ties: lower column first). Entries
    come grouped by row, rows ascending (as from a CSR product)."""
    keep = np.zeros(row.size, dtype=bool)
    candidates = np.flatnonzero((val > 0) & (val >= _floor(row, val, k)))
    row, col, val = row[candidates], col[candidates], val[candidates]
    order = np.lexsort((col, -val, row))
    sorted_row = row[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_row, sorted_row, side="left")
    keep[candidates[order[rank < k]]] = True
    return keep


def _floor(row: IntArray, val: Float64Array, k: int) -> Float64Array:
    """Per entry, a value its row's k-th largest is at least (-inf for rows of at most k
    entries): the smallest of the maxima of k disjoint pieces of the row. Entries below it
    cannot make the top k, so only the rest are sorted (a row has thousands of entries)."""
    floor = np.full(row.size, -np.inf)
    if row.size == 0 or k <= 0:
        return floor
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    sizes = np.diff(np.r_[starts, row.size])
    long = sizes > k
    if not long.any():
        return floor
    first, size = starts[long], sizes[long]
    # k non-empty pieces per long row, then its end (a piece start whose maximum is unused).
    bounds = first[:, None] + (np.arange(k + 1)[None, :] * size[:, None]) // k
    maxima = np.maximum.reduceat(np.append(val, -np.inf), bounds.ravel())
    lowest = maxima.reshape(-1, k + 1)[:, :k].min(axis=1)
    per_row = np.full(starts.size, -np.inf)
    per_row[long] = lowest
    floor[:] = np.repeat(per_row, sizes)
    return floor


def neighbour_graph(
    left: sparse.csr_matrix, right: sparse.csr_matrix, k: int, weigh: Weigh
) -> sparse.csr_matrix:
    """top-k per row of weigh(left @ right) without its diagonal, as float32 CSR.

    `left` is items x customers, `right` customers x items.
    """
    n_items = left.shape[0]
    basket = np.diff(right.indptr).astype(np.float64)
    # Expected entries per product row: co-purchases spread over the catalogue.
    per_row = max(1.0, min(float(n_items), float((basket**2).sum()) / max(1, n_items)))
    step = max(1, int(CHUNK_ENTRIES / per_row))
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[Float64Array] = []
    for start in range(0, n_items, step):
        block = (left[start : start + step] @ right).tocoo()
        row = block.row.astype(np.int64) + start
        col = block.col.astype(np.int64)
        off_diagonal = row != col
        row, col = row[off_diagonal], col[off_diagonal]
        val = weigh(row, col, block.data[off_diagonal].astype(np.float64))
        keep = _top_k(row, col, val, k)
        rows.append(row[keep])
        cols.append(col[keep])
        vals.append(val[keep])
    graph = sparse.csr_matrix(
        (
            np.concatenate(vals or [np.zeros(0)]).astype(np.float32),
            (
                np.concatenate(rows or [np.zeros(0, np.int64)]),
                np.concatenate(cols or [np.zeros(0, np.int64)]),
            ),
        ),
        shape=(n_items, n_items),
    )
    graph.sort_indices()
    return graph
