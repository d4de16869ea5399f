"""Order lines turned into index maps and a sparse customer x product matrix.

Everything downstream works on integer indices; this module is the only place that maps
ids to them, so training and scoring always agree on which row and column is which.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.records import Interaction

NO_REGION = -1
"""Region index of a customer (or order line) whose region is unknown."""


@dataclass(frozen=True)
class Dataset:
    """Index maps, the user-item matrix and the order lines as parallel index arrays."""

    customer_ids: list[str]
    item_ids: list[str]
    regions: list[str]
    matrix: sparse.csr_matrix
    """customers x items, one entry per (customer, product): log1p(total quantity)."""
    customer_region: npt.NDArray[np.int64]
    """Region index of each customer's most recent order with a region, or NO_REGION."""
    line_customer: npt.NDArray[np.int64]
    line_item: npt.NDArray[np.int64]
    line_region: npt.NDArray[np.int64]
    line_time: npt.NDArray[np.float64]
    """Epoch seconds of each order line."""


def _index(values: Sequence[str]) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Sorted distinct values and the index of each input value among them."""
    uniques, inverse = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    return [str(v) for v in uniques], inverse.astype(np.int64)


def _latest_region(
    customer: npt.NDArray[np.int64],
    region: npt.NDArray[np.int64],
    time: npt.NDArray[np.float64],
    n_customers: int,
) -> npt.NDArray[np.int64]:
    """Per customer, the region of the latest order line that has one."""
    result = np.full(n_customers, NO_REGION, dtype=np.int64)
    known = region != NO_REGION
    order = np.lexsort((time[known], customer[known]))  # by customer, then time ascending
    # Later assignments win, so each customer ends with its most recent region.
    result[customer[known][order]] = region[known][order]
    return result


def build_dataset(interactions: Sequence[Interaction]) -> Dataset:
    """Index the interactions; repeated lines of one (customer, product) make one entry."""
    if not interactions:
        empty_i = np.zeros(0, dtype=np.int64)
        return Dataset(
            customer_ids=[],
            item_ids=[],
            regions=[],
            matrix=sparse.csr_matrix((0, 0), dtype=np.float64),
            customer_region=empty_i,
            line_customer=empty_i,
            line_item=empty_i,
            line_region=empty_i,
            line_time=np.zeros(0, dtype=np.float64),
        )
    customer_ids, customer = _index([i.customer_id for i in interactions])
    item_ids, item = _index([i.product_id for i in interactions])
    regions = sorted({i.region for i in interactions if i.region is not None})
    region_index = {name: n for n, name in enumerate(regions)}
    region = np.array(
        [NO_REGION if i.region is None else region_index[i.region] for i in interactions],
        dtype=np.int64,
    )
    time = np.array([i.ordered_at.timestamp() for i in interactions], dtype=np.float64)
    quantity = np.array([i.quantity for i in interactions], dtype=np.float64)

    # COO -> CSR sums duplicate (customer, product) pairs into one entry.
    totals = sparse.csr_matrix(
        (quantity, (customer, item)), shape=(len(customer_ids), len(item_ids))
    )
    totals.sum_duplicates()
    totals.sort_indices()
    matrix = totals.copy()
    matrix.data = np.log1p(totals.data)
    return Dataset(
        customer_ids=customer_ids,
        item_ids=item_ids,
        regions=regions,
        matrix=matrix,
        customer_region=_latest_region(customer, region, time, len(customer_ids)),
        line_customer=customer,
        line_item=item,
        line_region=region,
        line_time=time,
    )


def binarize(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Same sparsity pattern with every stored value 1.0: who bought what, not how much."""
    binary = sparse.csr_matrix(
        (np.ones(matrix.nnz, dtype=np.float64), matrix.indices.copy(), matrix.indptr.copy()),
        shape=matrix.shape,
    )
    binary.sort_indices()
    return binary
