"""Data-quality checks on a batch of order lines: what is wrong, how much, and whether a
model may be fed from it.

Lines are fed one by one to a `QualityAccumulator` (compact columns, so a backfill of millions
of lines stays small), and `report()` judges the whole batch at once with numpy. The checks:
missing customer or product ids, duplicate events (the same product on the same order twice:
an event sent twice), quantity and price outliers against each product's usual range in the
batch, lines ingest rejected as invalid (when it says so), and coverage (catalogue products
nobody bought, customers with a single order). Examples carry ids only, no personal data.
"""

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from mgrecs.common.schemas import OrderEvent

MAX_EXAMPLES = 5
"""Examples kept per check; the rest are only counted."""
MIN_OBSERVATIONS = 5
"""A product with fewer lines in the batch has no usual range yet and is not judged."""
OUTLIER_MADS = 5.0
"""How many (scaled) median absolute deviations of log(value) make an outlier..."""
OUTLIER_MIN_FACTOR = 10.0
"""...and at least this factor from the product's median, so that a product almost always
bought once (MAD 0) does not flag a quantity of 2."""
_MAD_SCALE = 1.4826
_FLOOR = 0.01
"""Values below this (free items) are taken as this on the log scale."""


class CheckResult(BaseModel):
    """One check: how many lines it flagged, their share of the batch, and a few of them."""

    count: int = 0
    rate: float = 0.0
    examples: list[dict[str, Any]] = Field(default_factory=list)


class Coverage(BaseModel):
    """Who and what the batch leaves thin: informative, not counted as bad records."""

    products_without_purchases: int = 0
    products_without_purchases_examples: list[str] = Field(default_factory=list)
    customers_with_one_order: int = 0
    customers_with_one_order_examples: list[str] = Field(default_factory=list)
    customers: int = 0
    products_bought: int = 0


class QualityReport(BaseModel):
    """The report stored per sync and per export (JSON in `data_quality_reports.report`)."""

    source: str
    kind: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    lines: int
    bad_lines: int
    """Lines flagged by at least one check (a line counts once)."""
    bad_rate: float
    max_bad_rate: float
    passed: bool
    reason: str
    checks: dict[str, CheckResult]
    coverage: Coverage


@dataclass
class _Examples:
    items: list[dict[str, Any]]
    count: int = 0

    def add(self, example: dict[str, Any]) -> None:
        self.count += 1
        if len(self.items) < MAX_EXAMPLES:
            self.items.append(example)


class QualityAccumulator:
    """Collects order lines in compact columns; `report()` runs the checks on all of them."""

    def __init__(self) -> None:
        self.lines = 0
        self._missing_customer = _Examples([])
        self._missing_product = _Examples([])
        self._invalid = _Examples([])
        self._product_index: dict[str, int] = {}
        self._product_ids: list[str] = []
        # One entry per line with a product id (the lines the other checks can judge).
        self._product = array("i")
        self._quantity = array("f")
        self._price = array("d")
        self._key = array("q")
        self._orders: list[str] = []
        """The order id per judged line; consecutive lines share one string object."""
        self._bad_unjudged = 0
        """Bad lines without a product id (so not among the judged ones)."""
        self._bad_judged: set[int] = set()
        """Judged lines (by position) already bad for a missing customer id or as invalid."""
        # customer -> [last order id seen, distinct orders]; lines of an order are consecutive.
        self._customers: dict[str, list[Any]] = {}

    def add(
        self,
        order_id: str,
        customer_id: str | None,
        product_id: str | None,
        quantity: float,
        price: float,
        invalid: str | None = None,
    ) -> None:
        """One order line; a missing id is an empty string or None, an unreadable quantity or
        price is NaN (not judged), and `invalid` is why ingest rejected the line, if it did."""
        self.lines += 1
        if not product_id:
            self._bad_unjudged += 1
        elif not customer_id or invalid:
            self._bad_judged.add(len(self._product))
        if invalid:
            self._invalid.add({"order_id": order_id, "reason": invalid})
            quantity = price = float("nan")  # a rejected line says nothing of the usual range
        if not customer_id:
            self._missing_customer.add({"order_id": order_id, "product_id": product_id or None})
        else:
            seen = self._customers.get(customer_id)
            if seen is None:
                self._customers[customer_id] = [order_id, 1]
            elif seen[0] != order_id:
                seen[0] = order_id
                seen[1] += 1
        if not product_id:
            self._missing_product.add({"order_id": order_id, "customer_id": customer_id or None})
            return
        index = self._product_index.get(product_id)
        if index is None:
            index = self._product_index[product_id] = len(self._product_ids)
            self._product_ids.append(product_id)
        self._product.append(index)
        self._quantity.append(float(quantity))
        self._price.append(float(price))
        # Python's hash: salted per process, but one batch is judged in one process; a 64-bit
        # collision among millions of lines is out of reach.
        self._key.append(hash((order_id, product_id)))
        if self._orders and self._orders[-1] == order_id:
            order_id = self._orders[-1]
        self._orders.append(order_id)

    def add_rejected(self, customer_id: str | None, reason: str) -> None:
        """A record rejected before it became order lines (e.g. unmappable): one bad line."""
        self.lines += 1
        self._bad_unjudged += 1
        self._invalid.add({"customer_id": customer_id, "reason": reason})

    def add_event(self, event: OrderEvent) -> None:
        for line in event.lines:
            self.add(
                event.order_id,
                event.customer.customer_id,
                line.product_id,
                line.quantity,
                float(line.price),
            )

    def report(
        self,
        source: str,
        kind: str,
        max_bad_rate: float,
        catalogue: Iterable[str] = (),
    ) -> QualityReport:
        """Judge the batch: counts, rates, examples, coverage and the verdict."""
        product = np.asarray(self._product, dtype=np.int64)
        keys = np.frombuffer(self._key, dtype=np.int64) if self._key else _ints()
        duplicate = _duplicates(keys)
        quantity_out = _outliers(product, np.asarray(self._quantity, dtype=np.float64))
        price_out = _outliers(product, np.asarray(self._price, dtype=np.float64))

        checks: dict[str, CheckResult] = {
            "missing_customer_id": self._result(self._missing_customer),
            "missing_product_id": self._result(self._missing_product),
            "invalid": self._result(self._invalid),
            "duplicate": self._flagged(duplicate, product, None),
            "outlier_quantity": self._flagged(quantity_out, product, self._quantity),
            "outlier_price": self._flagged(price_out, product, self._price),
        }
        # A line flagged by several checks is one bad record.
        flagged = set(np.flatnonzero(duplicate | quantity_out | price_out).tolist())
        bad_lines = len(flagged | self._bad_judged) + self._bad_unjudged
        bad_rate = bad_lines / self.lines if self.lines else 0.0
        passed = bad_rate <= max_bad_rate
        return QualityReport(
            source=source,
            kind=kind,
            lines=self.lines,
            bad_lines=bad_lines,
            bad_rate=bad_rate,
            max_bad_rate=max_bad_rate,
            passed=passed,
            reason=_reason(checks, bad_lines, self.lines, bad_rate, max_bad_rate, passed),
            checks=checks,
            coverage=self._coverage(catalogue),
        )

    def _result(self, examples: _Examples) -> CheckResult:
        return CheckResult(
            count=examples.count,
            rate=examples.count / self.lines if self.lines else 0.0,
            examples=examples.items,
        )

    def _flagged(
        self,
        mask: npt.NDArray[np.bool_],
        product: npt.NDArray[np.int64],
        values: "array[float] | None",
    ) -> CheckResult:
        where = np.flatnonzero(mask)
        examples: list[dict[str, Any]] = []
        for position in where[:MAX_EXAMPLES].tolist():
            example: dict[str, Any] = {
                "order_id": self._orders[position],
                "product_id": self._product_ids[int(product[position])],
            }
            if values is not None:
                example["value"] = values[position]
            examples.append(example)
        count = int(where.size)
        return CheckResult(
            count=count, rate=count / self.lines if self.lines else 0.0, examples=examples
        )

    def _coverage(self, catalogue: Iterable[str]) -> Coverage:
        unbought = sorted(set(catalogue) - self._product_index.keys())
        single = sorted(c for c, (_, orders) in self._customers.items() if orders == 1)
        return Coverage(
            products_without_purchases=len(unbought),
            products_without_purchases_examples=unbought[:MAX_EXAMPLES],
            customers_with_one_order=len(single),
            customers_with_one_order_examples=single[:MAX_EXAMPLES],
            customers=len(self._customers),
            products_bought=len(self._product_ids),
        )


def _ints() -> npt.NDArray[np.int64]:
    return np.zeros(0, dtype=np.int64)


def _duplicates(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Every repeat of a key after its first occurrence (the first one is the event)."""
    flagged = np.zeros(keys.size, dtype=bool)
    if keys.size == 0:
        return flagged
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    repeat = np.empty(keys.size, dtype=bool)
    repeat[0] = False
    repeat[1:] = ordered[1:] == ordered[:-1]
    flagged[order[repeat]] = True
    return flagged


def _group_median(
    groups: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The median of `values` within each group, returned per element (vectorised)."""
    order = np.lexsort((values, groups))
    sorted_groups = groups[order]
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sizes = np.diff(np.r_[starts, sorted_groups.size])
    medians = (sorted_values[starts + (sizes - 1) // 2] + sorted_values[starts + sizes // 2]) / 2
    per_group = np.repeat(medians, sizes)
    result = np.empty_like(values)
    result[order] = per_group
    return result


def _outliers(
    product: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Lines far from their product's usual range on the log scale: more than OUTLIER_MADS
    scaled MADs and at least OUTLIER_MIN_FACTOR away from the median. Products with fewer than
    MIN_OBSERVATIONS lines are not judged."""
    flagged = np.zeros(values.size, dtype=bool)
    judged = np.isfinite(values)
    if not judged.any():
        return flagged
    flagged[judged] = _finite_outliers(product[judged], values[judged])
    return flagged


def _finite_outliers(
    product: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    logs = np.log(np.maximum(values, _FLOOR))
    median = _group_median(product, logs)
    deviation = np.abs(logs - median)
    mad = _group_median(product, deviation) * _MAD_SCALE
    threshold = np.maximum(OUTLIER_MADS * mad, np.log(OUTLIER_MIN_FACTOR))
    counts = np.bincount(product)[product]
    return (counts >= MIN_OBSERVATIONS) & (deviation > threshold)


def _reason(
    checks: dict[str, CheckResult],
    bad_lines: int,
    lines: int,
    bad_rate: float,
    max_bad_rate: float,
    passed: bool,
) -> str:
    found = ", ".join(f"{name} {result.count}" for name, result in checks.items() if result.count)
    verdict = "within" if passed else "above"
    text = (
        f"{bad_lines} of {lines} lines bad ({bad_rate:.2%}), {verdict} the limit {max_bad_rate:.2%}"
    )
    return f"{text}: {found}" if found else text


def check_events(
    events: Iterable[OrderEvent],
    source: str,
    kind: str,
    max_bad_rate: float,
    catalogue: Iterable[str] = (),
) -> QualityReport:
    """The report of a batch of `OrderEvent`s (a sync's orders)."""
    accumulator = QualityAccumulator()
    for event in events:
        accumulator.add_event(event)
    return accumulator.report(source, kind, max_bad_rate, catalogue)
