"""Read a flat order-lines CSV into engine records, line by line.

The format (`mgrecs.engine.order_lines`) is the one `mgrecs sample-data` writes and backfill
reads; its reader hands the rows over, this module parses them into interactions.
Offline tools (evaluation, benchmarks) must accept files of millions of lines, so this uses
the csv module and plain parsing rather than a validating model per line; a bad line is
skipped and counted (or, strictly, reported with its line number) instead of aborting a long
read halfway.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from mgrecs.engine.order_lines import COLUMNS, MissingColumns, OrderLines
from mgrecs.engine.records import Interaction, ProductInfo

MAX_EXAMPLES = 5
"""Bad lines quoted in the summary; the rest are only counted."""


class OrdersFileError(ValueError):
    """The file cannot be read as order lines (missing columns, or a bad line when strict)."""


@dataclass
class ReadSummary:
    """How the read went, for the operator."""

    lines_read: int = 0
    lines_skipped: int = 0
    duplicates: int = 0
    """Lines repeating an (order_id, product_id) already read: the same event sent twice."""
    examples: list[str] = field(default_factory=list)
    """The first few skipped lines as "line N: reason"."""


@dataclass
class OrdersFile:
    """The interactions of a file, the products it describes, and how the read went."""

    interactions: list[Interaction]
    products: dict[str, ProductInfo]
    """What the file says about each product (its latest line wins), by product id."""
    summary: ReadSummary


class _BadLine(ValueError):
    pass


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _BadLine(f"ordered_at {text!r} is not an ISO-8601 date") from None
    # Naive times are taken as UTC; aware ones are normalised so all compare alike.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_quantity(text: str) -> int:
    try:
        quantity = int(text)
    except ValueError:
        raise _BadLine(f"quantity {text!r} is not an integer") from None
    if quantity <= 0:
        raise _BadLine(f"quantity {quantity} is not positive")
    return quantity


def _parse_price(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None  # price only feeds content back-off; a bad one is not worth a line


def iter_order_lines(
    handle: TextIO,
    summary: ReadSummary,
    products: dict[str, tuple[str, str, str]] | None = None,
    strict: bool = False,
) -> Iterator[Interaction]:
    """Yield one Interaction per good line; count bad ones in `summary` (raise if strict).

    Fills `products` (when given) with each product's latest raw (name, category, price).
    Repeated ids and regions share one string object, which keeps millions of records small.
    """
    try:
        lines = OrderLines(handle)
    except MissingColumns as error:
        raise OrdersFileError(str(error)) from None
    header = lines.header
    at = {name: lines.index(name) for name in COLUMNS}
    width = max(at.values()) + 1
    i_order, i_customer, i_product = at["order_id"], at["customer_id"], at["product_id"]
    i_quantity, i_time, i_region = at["quantity"], at["ordered_at"], at["region"]
    i_name, i_category, i_price = at["product_name"], at["category"], at["price"]
    seen: set[tuple[str, str]] = set()
    strings: dict[str, str] = {}
    share = strings.setdefault
    last_text, last_time = "", datetime.min
    for row in lines:
        summary.lines_read += 1
        try:
            if len(row) < width:
                raise _BadLine(f"{len(row)} fields, the header has {len(header)}")
            order_id, customer_id = row[i_order].strip(), row[i_customer].strip()
            product_id = row[i_product].strip()
            if not (order_id and customer_id and product_id):
                raise _BadLine("empty order_id, customer_id or product_id")
            quantity = _parse_quantity(row[i_quantity].strip())
            text = row[i_time].strip()
            if text != last_text:  # lines of one order share a time: parse it once
                last_time, last_text = _parse_time(text), text
        except _BadLine as error:
            message = f"line {lines.line_number}: {error}"
            if strict:
                raise OrdersFileError(message) from None
            summary.lines_skipped += 1
            if len(summary.examples) < MAX_EXAMPLES:
                summary.examples.append(message)
            continue
        key = (order_id, product_id)
        if key in seen:
            summary.duplicates += 1
            continue
        seen.add(key)
        if products is not None:
            products[product_id] = (row[i_name], row[i_category], row[i_price])
        region = row[i_region].strip()
        yield Interaction(
            share(customer_id, customer_id),
            share(product_id, product_id),
            quantity,
            last_time,
            share(region, region) if region else None,
        )


def read_orders(path: Path | str, strict: bool = False) -> OrdersFile:
    """Read a whole orders file (see `iter_order_lines` for what counts as bad)."""
    summary = ReadSummary()
    products: dict[str, tuple[str, str, str]] = {}
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        try:
            interactions = list(iter_order_lines(handle, summary, products, strict))
        except (csv.Error, UnicodeDecodeError) as error:
            raise OrdersFileError(f"{path} is not a readable CSV file: {error}") from None
    infos = {
        product_id: ProductInfo(
            product_id, name.strip(), category.strip() or None, _parse_price(price.strip())
        )
        for product_id, (name, category, price) in products.items()
    }
    return OrdersFile(interactions, infos, summary)
