"""Order lines turned into index maps and a sparse customer x product matrix.

Everything downstream works on integer indices; this module is the only place that maps
ids to them, so training and scoring always agree on which row and column is which.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
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
    customer_region: IntArray
    """Region index of each customer's most recent order with a region, or NO_REGION."""
    line_customer: IntArray
    line_item: IntArray
    line_region: IntArray
    line_time: Float64Array
    """Epoch seconds of each order line."""


def _latest_region(
    customer: IntArray,
    region: IntArray,
    time: Float64Array,
    n_customers: int,
) -> IntArray:
    """Per customer, the region of the latest order line that has one."""
    result = np.full(n_customers, NO_REGION, dtype=np.int64)
    known = region != NO_REGION
    order = np.lexsort((time[known], customer[known]))  # by customer, then time ascending
    # Later assignments win, so each customer ends with its most recent region.
    result[customer[known][order]] = region[known][order]
    return result


class LinesBuilder:
    """Collects order lines a chunk of columns at a time (as a database cursor gives them)
    and numbers each distinct id once with a dict: 10M lines never become 10M objects, and
    only the distinct ids are sorted."""

    def __init__(self) -> None:
        self._customers: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._regions: dict[str | None, int] = {}
        self._customer: list[IntArray] = []
        self._item: list[IntArray] = []
        self._region: list[IntArray] = []
        self._quantity: list[Float64Array] = []
        self._time: list[Float64Array] = []

    def add(
        self,
        customer_ids: Sequence[str],
        product_ids: Sequence[str],
        quantities: Iterable[float],
        times: Iterable[float],
        regions: Sequence[str | None],
    ) -> None:
        """One chunk of lines as parallel columns; `times` in epoch seconds."""
        n = len(customer_ids)
        self._customer.append(_numbered(self._customers, customer_ids))
        self._item.append(_numbered(self._items, product_ids))
        self._region.append(_numbered(self._regions, regions))
        self._quantity.append(np.fromiter(quantities, np.float64, count=n))
        self._time.append(np.fromiter(times, np.float64, count=n))

    def build(self) -> "Lines":
        """The lines with ids numbered in sorted order (what `np.unique` would give)."""
        customer_ids, customer_rank = _sorted_ranks(list(self._customers))
        item_ids, item_rank = _sorted_ranks(list(self._items))
        seen_regions = list(self._regions)
        regions = sorted(r for r in seen_regions if r is not None)
        region_index = {name: n for n, name in enumerate(regions)}
        region_rank = np.array(
            [NO_REGION if r is None else region_index[r] for r in seen_regions], dtype=np.int64
        )
        return Lines(
            customer_ids=customer_ids,
            item_ids=item_ids,
            regions=regions,
            customer=customer_rank[_joined(self._customer, np.int64)],
            item=item_rank[_joined(self._item, np.int64)],
            region=region_rank[_joined(self._region, np.int64)],
            quantity=_joined(self._quantity, np.float64),
            time=_joined(self._time, np.float64),
        )


def _numbered(numbers: dict[str, int] | dict[str | None, int], values: Sequence[Any]) -> IntArray:
    """Each value's number in order of first appearance (new values are added)."""
    return np.fromiter(
        (numbers.setdefault(value, len(numbers)) for value in values), np.int64, count=len(values)
    )


def _sorted_ranks(values: list[str]) -> tuple[list[str], IntArray]:
    """The values sorted, and each value's (by first appearance) index among them."""
    order = sorted(range(len(values)), key=values.__getitem__)
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values), dtype=np.int64)
    return [values[n] for n in order], rank


def _joined(parts: list[Any], dtype: type) -> Any:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


@dataclass(frozen=True)
class Lines:
    """Order lines as parallel index arrays over sorted distinct ids: the form the split and
    the fit work on, built once per job instead of from Interaction objects at every step."""

    customer_ids: list[str]
    item_ids: list[str]
    regions: list[str]
    customer: IntArray
    item: IntArray
    region: IntArray
    """Region index of the line, or NO_REGION."""
    quantity: Float64Array
    time: Float64Array
    """Epoch seconds."""

    def __len__(self) -> int:
        return int(self.customer.size)

    @classmethod
    def of(cls, interactions: "Sequence[Interaction] | Lines") -> "Lines":
        """`interactions` in columns (as they are when they already are)."""
        if isinstance(interactions, Lines):
            return interactions
        builder = LinesBuilder()
        builder.add(
            [i.customer_id for i in interactions],
            [i.product_id for i in interactions],
            (i.quantity for i in interactions),
            (i.ordered_at.timestamp() for i in interactions),
            [i.region for i in interactions],
        )
        return builder.build()

    def where(self, keep: BoolArray) -> "Lines":
        """The kept lines, renumbered among themselves (ids no kept line has are dropped)."""
        used_customers, customer = np.unique(self.customer[keep], return_inverse=True)
        used_items, item = np.unique(self.item[keep], return_inverse=True)
        region = self.region[keep]
        used_regions = np.unique(region[region != NO_REGION])
        region_rank = np.full(len(self.regions) + 1, NO_REGION, dtype=np.int64)
        region_rank[used_regions] = np.arange(used_regions.size)
        return Lines(
            customer_ids=[self.customer_ids[n] for n in used_customers.tolist()],
            item_ids=[self.item_ids[n] for n in used_items.tolist()],
            regions=[self.regions[n] for n in used_regions.tolist()],
            customer=customer.astype(np.int64).ravel(),
            item=item.astype(np.int64).ravel(),
            region=region_rank[region],  # NO_REGION (-1) picks the last slot: NO_REGION
            quantity=self.quantity[keep],
            time=self.time[keep],
        )


def build_dataset(interactions: "Sequence[Interaction] | Lines") -> Dataset:
    """Index the interactions; repeated lines of one (customer, product) make one entry."""
    lines = Lines.of(interactions)
    if not len(lines):
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
    customer_ids, item_ids, regions = lines.customer_ids, lines.item_ids, lines.regions
    customer, item, region = lines.customer, lines.item, lines.region
    time, quantity = lines.time, lines.quantity

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
