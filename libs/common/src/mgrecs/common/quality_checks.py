"""Data-quality checks on a batch of order lines, giving its `quality.QualityReport`.

Lines are fed one by one to a `QualityAccumulator`, which judges them in windows of
WINDOW_LINES with numpy, so memory stays flat however long the batch is: what it keeps beyond
the window is 8 bytes per distinct order and customer and a bounded sample per product. The
checks: missing customer or product ids, duplicate events (an order id seen again after other
orders, or the same product twice on one order), quantity and price outliers against each
product's usual range (a sample of up to RESERVOIR values of everything seen so far, the
line's own window included), lines ingest rejected as invalid (when it says so), and coverage
(catalogue products nobody bought, customers with a single order). Examples carry ids only,
no personal data.
"""

import itertools
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from mgrecs.common.quality import CheckResult, Coverage, QualityReport
from mgrecs.common.schemas import OrderEvent

MAX_EXAMPLES = 5
"""Examples kept per check; the rest are only counted."""
MIN_OBSERVATIONS = 5
"""A product with fewer lines so far has no usual range yet and is not judged."""
OUTLIER_MADS = 5.0
"""How many (scaled) median absolute deviations of log(value) make an outlier..."""
OUTLIER_MIN_FACTOR = 10.0
"""...and at least this factor from the product's median, so that a product almost always
bought once (MAD 0) does not flag a quantity of 2."""
WINDOW_LINES = 65_536
"""Lines held before they are judged together (a whole order stays in one window)."""
RESERVOIR = 64
"""Values kept per product and measure to estimate its usual range."""
EXAMPLE_CUSTOMERS = 1_000
"""Customer ids remembered to give examples of customers with one order."""
_MAD_SCALE = 1.4826
_FLOOR = 0.01
"""Values below this (free items) are taken as this on the log scale."""


@dataclass
class _Examples:
    items: list[dict[str, Any]]
    count: int = 0

    def add(self, example: dict[str, Any]) -> None:
        self.count += 1
        if len(self.items) < MAX_EXAMPLES:
            self.items.append(example)


class _KeySet:
    """A set of 64-bit keys as one sorted numpy array: 8 bytes a key, merged a window at a
    time."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)

    def contains(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        if self.keys.size == 0:
            return np.zeros(keys.size, dtype=bool)
        where = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        found: npt.NDArray[np.bool_] = self.keys[where] == keys
        return found

    def add(self, keys: npt.NDArray[np.int64]) -> None:
        """Insert the new ones in place of order: one new array, no sorting of the old."""
        new = np.unique(keys)
        new = new[~self.contains(new)]
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, new), new)


class _UsualRange:
    """Per product, a reservoir sample of log(value) to judge a line against."""

    def __init__(self, seed: int) -> None:
        self.sample = np.full((0, RESERVOIR), np.nan, dtype=np.float32)
        self.seen = np.zeros(0, dtype=np.int64)
        self._random = np.random.default_rng(seed)

    def _grow(self, products: int) -> None:
        if products > self.seen.size:
            size = max(products, 2 * self.seen.size, 64)
            sample = np.full((size, RESERVOIR), np.nan, dtype=np.float32)
            sample[: self.seen.size] = self.sample
            seen = np.zeros(size, dtype=np.int64)
            seen[: self.seen.size] = self.seen
            self.sample, self.seen = sample, seen

    def outliers(
        self, product: npt.NDArray[np.int64], values: npt.NDArray[np.float64], products: int
    ) -> npt.NDArray[np.bool_]:
        """Take a window's values into the sample, then flag those far from their product's
        median: more than OUTLIER_MADS scaled MADs and at least OUTLIER_MIN_FACTOR away.
        Products with fewer than MIN_OBSERVATIONS values so far are not judged."""
        self._grow(products)
        flagged = np.zeros(values.size, dtype=bool)
        judged = np.flatnonzero(np.isfinite(values))
        if judged.size == 0:
            return flagged
        owner = product[judged]
        logs = np.log(np.maximum(values[judged], _FLOOR))
        self._sample(owner, logs)
        touched, local = np.unique(owner, return_inverse=True)
        rows = self.sample[touched].astype(np.float64)
        median = np.nanmedian(rows, axis=1)
        mad = np.nanmedian(np.abs(rows - median[:, None]), axis=1) * _MAD_SCALE
        threshold = np.maximum(OUTLIER_MADS * mad, np.log(OUTLIER_MIN_FACTOR))
        deviation = np.abs(logs - median[local])
        enough = self.seen[touched][local] >= MIN_OBSERVATIONS
        flagged[judged] = enough & (deviation > threshold[local])
        return flagged

    def _sample(self, owner: npt.NDArray[np.int64], logs: npt.NDArray[np.float64]) -> None:
        """Reservoir sampling, a window at a time: value k of a product (from 0) takes slot k
        while there is one, then a random slot with probability RESERVOIR / (k + 1)."""
        order = np.argsort(owner, kind="stable")
        ordered = owner[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, ordered.size])
        rank = np.arange(ordered.size) - np.repeat(starts, sizes)
        k = self.seen[ordered] + rank
        slot = np.where(k < RESERVOIR, k, self._random.integers(0, k + 1))
        kept = slot < RESERVOIR
        self.sample[ordered[kept], slot[kept]] = logs[order][kept]
        np.add.at(self.seen, ordered[starts], sizes)


class _Window:
    """The lines not judged yet, in columns; one entry per order (as it appeared) in `orders`."""

    def __init__(self) -> None:
        self.order = array("i")
        """The line's order, an index into the window's orders."""
        self.product = array("i")
        self.quantity = array("d")
        self.price = array("d")
        self.bad = array("b")
        """1 when the line is already bad (missing customer id, or invalid)."""
        self.order_ids: list[str] = []
        self.order_keys = array("q")
        self.customer_keys = array("q")
        """0 for an order without a customer id."""

    def __len__(self) -> int:
        return len(self.product)


class QualityAccumulator:
    """Collects order lines and judges them a window at a time; `report()` gives the verdict."""

    def __init__(self) -> None:
        self.lines = 0
        self.bad_lines = 0
        self._missing_customer = _Examples([])
        self._missing_product = _Examples([])
        self._invalid = _Examples([])
        self._duplicate = _Examples([])
        self._outlier_quantity = _Examples([])
        self._outlier_price = _Examples([])
        self._product_index: dict[str, int] = {}
        self._product_ids: list[str] = []
        self._quantity_range = _UsualRange(seed=1)
        self._price_range = _UsualRange(seed=2)
        self._orders_seen = _KeySet()
        self._customers_seen = _KeySet()
        self._customers_repeat = _KeySet()
        self._example_customers: dict[int, str] = {}
        self._window = _Window()
        self._last_order: str | None = None
        """The order id of the previous line: lines of one order are consecutive."""

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
        window = self._window
        if order_id != self._last_order or not window.order_ids:
            if len(window) >= WINDOW_LINES:
                self._judge()
                window = self._window  # the line belongs to the new window
            self._start_order(order_id, customer_id)
        if invalid:
            self._invalid.add({"order_id": order_id, "reason": invalid})
            quantity = price = math.nan  # a rejected line says nothing of the usual range
        if not customer_id:
            self._missing_customer.add({"order_id": order_id, "product_id": product_id or None})
        if not product_id:
            self._missing_product.add({"order_id": order_id, "customer_id": customer_id or None})
            self.bad_lines += 1
            return
        index = self._product_index.get(product_id)
        if index is None:
            index = self._product_index[product_id] = len(self._product_ids)
            self._product_ids.append(product_id)
        window.order.append(len(window.order_ids) - 1)
        window.product.append(index)
        window.quantity.append(quantity)
        window.price.append(price)
        window.bad.append(1 if invalid or not customer_id else 0)

    def add_lines(
        self,
        order_ids: Sequence[str],
        customer_ids: Sequence[str | None],
        product_ids: Sequence[str | None],
        quantities: Sequence[float],
        prices: Sequence[float],
    ) -> None:
        """`add` for each of these lines (none rejected by ingest), in columns: the window's
        bookkeeping a piece at a time instead of a line at a time (a retrain checks 10M
        lines). Pieces with a missing id take `add` line by line, for its examples."""
        if not (all(customer_ids) and all(product_ids)):
            for line in zip(order_ids, customer_ids, product_ids, quantities, prices, strict=True):
                self.add(*line)
            return
        n = len(order_ids)
        starts = np.fromiter(
            (a != b for a, b in zip(order_ids, [self._last_order, *order_ids[:-1]], strict=True)),
            dtype=bool,
            count=n,
        )
        if n and not self._window.order_ids:
            starts[0] = True
        start_at = np.flatnonzero(starts)
        index = self._product_index
        product = np.fromiter(
            (index.setdefault(p, len(index)) for p in cast(Sequence[str], product_ids)),
            np.int64,
            count=n,
        )
        self._product_ids.extend(itertools.islice(index, len(self._product_ids), None))
        position = 0
        while position < n:
            if starts[position] and len(self._window) >= WINDOW_LINES:
                self._judge()
            # The window takes lines up to the first order starting once it is full.
            full_at = max(position + 1, position + WINDOW_LINES - len(self._window))
            later = start_at[np.searchsorted(start_at, full_at) :]
            cut = int(later[0]) if later.size else n
            self._extend_window(
                order_ids, customer_ids, starts, product, quantities, prices, position, cut
            )
            position = cut
        self.lines += n

    def _extend_window(
        self,
        order_ids: Sequence[str],
        customer_ids: Sequence[str | None],
        starts: npt.NDArray[np.bool_],
        product: npt.NDArray[np.int64],
        quantities: Sequence[float],
        prices: Sequence[float],
        begin: int,
        end: int,
    ) -> None:
        """Lines begin..end of an `add_lines` piece into the window (no judging inside)."""
        window = self._window
        for at in np.flatnonzero(starts[begin:end]).tolist():
            self._start_order(order_ids[begin + at], customer_ids[begin + at])
        first_order = len(window.order_ids) - int(np.count_nonzero(starts[begin:end])) - 1
        order = first_order + np.cumsum(starts[begin:end])
        window.order.frombytes(order.astype(np.int32).tobytes())
        window.product.frombytes(product[begin:end].astype(np.int32).tobytes())
        window.quantity.frombytes(np.asarray(quantities[begin:end], np.float64).tobytes())
        window.price.frombytes(np.asarray(prices[begin:end], np.float64).tobytes())
        window.bad.frombytes(bytes(end - begin))

    def _start_order(self, order_id: str, customer_id: str | None) -> None:
        # Python's hash: salted per process, but one batch is judged in one process; a 64-bit
        # collision among millions of orders is out of reach.
        window = self._window
        self._last_order = order_id
        window.order_ids.append(order_id)
        window.order_keys.append(hash(order_id))
        customer_key = (hash(customer_id) or 1) if customer_id else 0
        window.customer_keys.append(customer_key)
        if customer_id and len(self._example_customers) < EXAMPLE_CUSTOMERS:
            self._example_customers.setdefault(customer_key, customer_id)

    def add_rejected(self, customer_id: str | None, reason: str) -> None:
        """A record rejected before it became order lines (e.g. unmappable): one bad line."""
        self.lines += 1
        self.bad_lines += 1
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

    def _judge(self) -> None:
        """Run the checks on the window's lines, count and keep examples, start a new window."""
        window, self._window = self._window, _Window()
        if not window.order_ids:
            return
        orders = np.frombuffer(window.order_keys, dtype=np.int64)
        repeated = self._repeated_orders(orders)
        self._count_customers(np.frombuffer(window.customer_keys, dtype=np.int64)[~repeated])
        if not len(window):
            return
        order = np.frombuffer(window.order, dtype=np.int32).astype(np.int64)
        product = np.frombuffer(window.product, dtype=np.int32).astype(np.int64)
        quantity = np.frombuffer(window.quantity, dtype=np.float64)
        price = np.frombuffer(window.price, dtype=np.float64)
        products = len(self._product_ids)
        duplicate = repeated[order] | _repeated_pairs(order, product)
        quantity_out = self._quantity_range.outliers(product, quantity, products)
        price_out = self._price_range.outliers(product, price, products)
        for mask, examples, values in (
            (duplicate, self._duplicate, None),
            (quantity_out, self._outlier_quantity, quantity),
            (price_out, self._outlier_price, price),
        ):
            for position in np.flatnonzero(mask).tolist():
                example: dict[str, Any] = {
                    "order_id": window.order_ids[order[position]],
                    "product_id": self._product_ids[product[position]],
                }
                if values is not None:
                    example["value"] = float(values[position])
                examples.add(example)
        already = np.frombuffer(window.bad, dtype=np.int8).astype(bool)
        self.bad_lines += int(np.count_nonzero(already | duplicate | quantity_out | price_out))

    def _repeated_orders(self, orders: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Orders seen before: in an earlier window, or earlier in this one."""
        repeated = self._orders_seen.contains(orders)
        _, first = np.unique(orders, return_index=True)
        again = np.ones(orders.size, dtype=bool)
        again[first] = False
        self._orders_seen.add(orders)
        return repeated | again

    def _count_customers(self, customers: npt.NDArray[np.int64]) -> None:
        """Remember who has ordered, and who more than once (for coverage)."""
        customers = customers[customers != 0]
        unique, counts = np.unique(customers, return_counts=True)
        repeat = unique[(counts > 1) | self._customers_seen.contains(unique)]
        self._customers_seen.add(unique)
        self._customers_repeat.add(repeat)

    def report(
        self,
        source: str,
        kind: str,
        max_bad_rate: float,
        catalogue: Iterable[str] = (),
    ) -> QualityReport:
        """Judge what is left and give the verdict: counts, rates, examples, coverage."""
        self._judge()
        checks: dict[str, CheckResult] = {
            "missing_customer_id": self._result(self._missing_customer),
            "missing_product_id": self._result(self._missing_product),
            "invalid": self._result(self._invalid),
            "duplicate": self._result(self._duplicate),
            "outlier_quantity": self._result(self._outlier_quantity),
            "outlier_price": self._result(self._outlier_price),
        }
        bad_rate = self.bad_lines / self.lines if self.lines else 0.0
        passed = bad_rate <= max_bad_rate
        return QualityReport(
            source=source,
            kind=kind,
            lines=self.lines,
            bad_lines=self.bad_lines,
            bad_rate=bad_rate,
            max_bad_rate=max_bad_rate,
            passed=passed,
            reason=_reason(checks, self.bad_lines, self.lines, bad_rate, max_bad_rate, passed),
            checks=checks,
            coverage=self._coverage(catalogue),
        )

    def _result(self, examples: _Examples) -> CheckResult:
        return CheckResult(
            count=examples.count,
            rate=examples.count / self.lines if self.lines else 0.0,
            examples=examples.items,
        )

    def _coverage(self, catalogue: Iterable[str]) -> Coverage:
        unbought = sorted(set(catalogue) - self._product_index.keys())
        repeat = self._customers_repeat
        known = np.fromiter(self._example_customers, dtype=np.int64)
        single_known = known[~repeat.contains(known)] if known.size else known
        single = sorted(self._example_customers[int(key)] for key in single_known)
        customers = int(self._customers_seen.keys.size)
        return Coverage(
            products_without_purchases=len(unbought),
            products_without_purchases_examples=unbought[:MAX_EXAMPLES],
            customers_with_one_order=customers - int(repeat.keys.size),
            customers_with_one_order_examples=single[:MAX_EXAMPLES],
            customers=customers,
            products_bought=len(self._product_ids),
        )


def _repeated_pairs(
    order: npt.NDArray[np.int64], product: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Lines whose product already appeared on the same order (the event sent twice)."""
    pairs = order * (int(product.max()) + 1) + product
    _, first = np.unique(pairs, return_index=True)
    again = np.ones(pairs.size, dtype=bool)
    again[first] = False
    return again


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
