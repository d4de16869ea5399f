"""Time-based train/test split: train on the past, evaluate on what customers bought next.

A random split would leak the future into training and flatter every recipe; a time split
asks the question production asks. Hyper-parameters get their own validation split cut from
the end of the training period, so the test period is never looked at before the final
evaluation.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.dataset import Lines, binarize, build_dataset
from mgrecs.engine.recipes.base import TrainingData
from mgrecs.engine.records import Interaction

MIN_CUSTOMERS = 25
"""Fewer training customers with two or more products than this is too little to learn from."""
VALIDATION_FRACTION = 0.15
"""Share of the training time span, at its end, that becomes the validation period."""


class InsufficientData(ValueError):
    """The data cannot support the requested evaluation; the message says what is missing."""


@dataclass(frozen=True)
class Split:
    """Training data, and per evaluated customer the products that count as right answers."""

    customer_ids: list[str]
    """Row index -> customer id (customers seen in training)."""
    item_ids: list[str]
    """Column index -> product id (products seen in training): the catalogue ranked."""
    regions: list[str]
    train: TrainingData
    users: IntArray
    """Rows of the evaluated customers: seen in training, with a non-empty truth."""
    truth: sparse.csr_matrix
    """len(users) x n_items, 1.0 where the product is a right answer for that customer."""
    request_time: Float64Array
    """Per evaluated customer, epoch seconds of their first order line in the test period:
    the "now" production would know when asked for their recommendations (time context)."""
    repeat: bool
    """True: repeat purchases count as right answers and purchased items are not excluded."""
    train_from: datetime
    test_from: datetime
    test_to: datetime
    """Time of the first training line, the boundary, and the time of the last test line."""
    validation: "Split | None"
    """A split of the training period alone, for choosing hyper-parameters."""

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _positions(used: IntArray, size: int) -> IntArray:
    """For each of `size` ids, its index among the distinct `used` ones (sorted), or -1."""
    distinct = np.unique(used)
    position = np.full(size, -1, dtype=np.int64)
    position[distinct] = np.arange(distinct.size, dtype=np.int64)
    return position


def _sorted_keys(matrix: sparse.csr_matrix, per_row: IntArray, n_items: int) -> IntArray:
    """row x n_items + column of every stored entry, ascending (as CSR stores them when
    its columns are sorted, as built)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), per_row)
    keys: IntArray = rows * n_items + np.asarray(matrix.indices, dtype=np.int64)
    if not matrix.has_sorted_indices:
        keys.sort()
    return keys


def _contains(ascending: IntArray, values: IntArray) -> BoolArray:
    """Which of `values` are in `ascending` (sorted): what np.isin says, by binary search
    instead of sorting both (isin took 2.8 s of a retrain's evaluate at 1M order lines)."""
    if ascending.size == 0:
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(ascending, values), ascending.size - 1)
    return np.asarray(ascending[at] == values)


def _from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def time_split(
    interactions: Sequence[Interaction] | Lines,
    *,
    test_from: datetime | None = None,
    test_days: int | None = None,
    repeat: bool = False,
    validation_fraction: float = VALIDATION_FRACTION,
    min_customers: int = MIN_CUSTOMERS,
) -> Split:
    """Train on lines strictly before `test_from` (or before the last `test_days` calendar
    days, UTC), test on the rest; raises InsufficientData when that leaves too little."""
    if (test_from is None) == (test_days is None):
        raise ValueError("give exactly one of test_from and test_days")
    if not len(interactions):
        raise InsufficientData("there are no order lines")
    lines = Lines.of(interactions)
    times = lines.time
    if test_days is not None:
        if test_days < 1:
            raise ValueError("test_days must be at least 1")
        last_day = _from_timestamp(float(times.max())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        test_from = last_day + timedelta(days=1 - test_days)
    assert test_from is not None
    boundary = _utc(test_from)
    is_train = times < boundary.timestamp()
    if not is_train.any():
        raise InsufficientData(f"no order lines before {boundary.isoformat()} to train on")
    if is_train.all():
        raise InsufficientData(f"no order lines on or after {boundary.isoformat()} to test on")

    train_lines = lines.where(is_train)
    dataset = build_dataset(train_lines)
    matrix = dataset.matrix.astype(np.float32)
    products_per_customer = np.diff(matrix.indptr)
    active = int((products_per_customer >= 2).sum())
    if active < min_customers:
        raise InsufficientData(
            f"only {active} customers bought two or more products before "
            f"{boundary.isoformat()}; at least {min_customers} are needed"
        )

    n_items = len(dataset.item_ids)
    # Row (column) of each of the lines' customers (products) in training, -1 if unseen there.
    customer_row = _positions(lines.customer[is_train], len(lines.customer_ids))
    item_column = _positions(lines.item[is_train], len(lines.item_ids))
    is_test = ~is_train
    test_row = customer_row[lines.customer[is_test]]
    test_column = item_column[lines.item[is_test]]
    known = (test_row >= 0) & (test_column >= 0)
    keys = np.unique(test_row[known] * n_items + test_column[known])
    if not repeat:  # only products new to the customer are right answers
        keys = keys[~_contains(_sorted_keys(matrix, products_per_customer, n_items), keys)]
    if keys.size == 0:
        raise InsufficientData(
            "no test customers: nobody seen in training bought a known"
            + ("" if repeat else ", new to them,")
            + f" product on or after {boundary.isoformat()}"
        )
    users, truth_rows = np.unique(keys // n_items, return_inverse=True)
    truth = sparse.csr_matrix(
        (np.ones(keys.size, np.float32), (truth_rows.ravel(), keys % n_items)),
        shape=(users.size, n_items),
    )

    first_test = np.full(len(dataset.customer_ids), np.inf)
    seen = test_row >= 0
    np.minimum.at(first_test, test_row[seen], times[is_test][seen])

    train_from = _from_timestamp(float(times[is_train].min()))
    validation = None
    if validation_fraction > 0:
        validation_from = boundary - (boundary - train_from) * validation_fraction
        try:
            validation = time_split(
                train_lines,
                test_from=validation_from,
                repeat=repeat,
                validation_fraction=0,
                min_customers=min_customers,
            )
        except InsufficientData:
            validation = None  # tuning then keeps each recipe's default parameters

    return Split(
        customer_ids=dataset.customer_ids,
        item_ids=dataset.item_ids,
        regions=dataset.regions,
        train=TrainingData(
            matrix=matrix,
            line_customer=dataset.line_customer,
            line_item=dataset.line_item,
            line_time=dataset.line_time,
            customer_region=dataset.customer_region,
            now=boundary.timestamp(),
        ),
        users=users.astype(np.int64),
        truth=truth,
        request_time=first_test[users],
        repeat=repeat,
        train_from=train_from,
        test_from=boundary,
        test_to=_from_timestamp(float(times[~is_train].max())),
        validation=validation,
    )


def with_binary_rows(split: Split) -> Split:
    """`split` (and its validation slice) with binary training rows: who bought what, the
    rows the served model is fitted on and scores, so evaluation measures what serves.
    (Quantity as a weight is a signal `make bench-quality` measures apart.)"""
    validation = None if split.validation is None else with_binary_rows(split.validation)
    matrix = sparse.csr_matrix(binarize(split.train.matrix), dtype=np.float32)
    train = replace(split.train, matrix=matrix)
    return replace(split, train=train, validation=validation)
