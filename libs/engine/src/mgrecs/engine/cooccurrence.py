"""Item-item similarity from co-purchases: cosine-damped co-occurrence, top-N per item.

C = XᵀX on the binary customer x product matrix counts customers who bought both items;
dividing by sqrt(n_i n_j) (n = distinct purchasers) keeps best-sellers from being every
item's neighbour. Only the strongest `neighbours` per item are kept, so the result stays
sparse and scoring a history is a sparse row sum.
"""

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float64Array

CHUNK_ENTRIES = 4_000_000
"""Upper bound on co-occurrence entries materialised at once while computing similarity."""


def _top_n(
    columns: npt.NDArray[np.int32], values: Float64Array, n: int
) -> tuple[npt.NDArray[np.int32], Float64Array]:
    """The `n` largest values of one row (ties by column), returned sorted by column."""
    if values.shape[0] > n:
        keep = np.lexsort((columns, -values))[:n]
        columns, values = columns[keep], values[keep]
    order = np.argsort(columns, kind="stable")
    return columns[order], values[order]


def item_similarity(binary: sparse.csr_matrix, neighbours: int) -> sparse.csr_matrix:
    """items x items similarity in [0, 1] with zero diagonal, at most `neighbours` per row."""
    n_items = binary.shape[1]
    by_item = binary.T.tocsr()
    purchasers = np.diff(by_item.indptr).astype(np.float64)
    norm = np.sqrt(purchasers)
    indptr = [0]
    indices: list[npt.NDArray[np.int32]] = []
    data: list[Float64Array] = []
    # Rows per chunk so that chunk x items co-occurrences stay bounded in memory.
    basket_sizes = np.diff(binary.indptr).astype(np.float64)
    per_row = max(1.0, float((basket_sizes**2).sum()) / max(1, n_items))
    step = max(1, int(CHUNK_ENTRIES / per_row))
    for start in range(0, n_items, step):
        stop = min(n_items, start + step)
        counts = (by_item[start:stop] @ binary).tocsr()
        counts.sort_indices()
        for offset in range(stop - start):
            row = start + offset
            lo, hi = counts.indptr[offset], counts.indptr[offset + 1]
            columns = counts.indices[lo:hi].astype(np.int32)
            values = counts.data[lo:hi]
            off_diagonal = columns != row
            columns, values = columns[off_diagonal], values[off_diagonal]
            # Cosine is at most 1; clip the rounding (3 / (√3·√3) = 1.0000000000000002).
            values = np.minimum(values / (norm[row] * norm[columns]), 1.0)
            columns, values = _top_n(columns, values, neighbours)
            indices.append(columns)
            data.append(values)
            indptr.append(indptr[-1] + columns.shape[0])
    if not indices:
        return sparse.csr_matrix((n_items, n_items), dtype=np.float64)
    return sparse.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr, dtype=np.int64)),
        shape=(n_items, n_items),
    )
