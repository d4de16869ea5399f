"""Order files for backfill, read one order at a time: CSV or JSON lines.

- CSV: flat order lines with a header, the format `mgrecs sample-data` writes and
  `mgrecs evaluate` reads (`mgrecs.engine.order_lines`: its columns and its one reader; the
  optional `status` is the line's: placed, cancelled, returned, and `updated_at` the order's
  version time, see OrderEvent).
- JSON lines (`.jsonl`, `.ndjson`): one JSON object per line, either a whole `OrderEvent` (the
  message of topic `orders`) or one flat order line with the CSV's column names.

Flat lines of one order are consecutive and share an order id; each group becomes one order.
Errors name the file line, so an operator can fix the file and backfill the rejects again.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Literal, TextIO

from pydantic import ValidationError

from mgrecs.common.quality_checks import QualityAccumulator
from mgrecs.common.schemas import OrderEvent
from mgrecs.engine.order_lines import (
    ALL_COLUMNS,
    COLUMNS,
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    OrderLines,
)

FileFormat = Literal["csv", "jsonl"]
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
EXTRA = "__extra__"
"""Marks a CSV row with more fields than the header: the row is garbled."""


def detect_format(name: str) -> FileFormat:
    """JSON lines by the file's suffix, CSV otherwise."""
    return "jsonl" if name.lower().endswith(JSON_SUFFIXES) else "csv"


@dataclass
class Row:
    """One flat order line as text, with the file line it came from."""

    number: int
    values: dict[str, str]


@dataclass
class FileOrder:
    """One order as the file has it: flat rows, or one JSON `OrderEvent` line (`text`)."""

    number: int
    """The file line it starts on (a CSV header is line 1)."""
    rows: list[Row] = field(default_factory=list)
    text: str | None = None
    error: str | None = None
    """Why the line cannot be read at all (not JSON, not an object)."""

    @property
    def span(self) -> int:
        """File lines it takes."""
        return len(self.rows) or 1

    @property
    def customer_id(self) -> str | None:
        if self.rows:
            return self.rows[0].values.get("customer_id") or None
        customer = _document(self.text).get("customer")
        return _text(customer.get("customer_id")) if isinstance(customer, dict) else None

    def to_order(self) -> OrderEvent:
        """Build and validate the order; ValueError says what is wrong, with line numbers."""
        if self.error:
            raise ValueError(f"line {self.number}: {self.error}")
        if self.text is not None:
            try:
                return OrderEvent.model_validate_json(self.text)
            except ValidationError as exc:
                problems = (_describe(error, [Row(self.number, {})]) for error in exc.errors())
                raise ValueError("; ".join(problems)) from exc
        return _order_from_rows(self.rows)

    def payload(self) -> str:
        """What goes to the dead-letter topic: the line as read, or the rows as CSV with the
        header, ready to fix and backfill again."""
        if not self.rows:
            return self.text or ""
        out = io.StringIO()
        writer = csv.DictWriter(
            out,
            fieldnames=ALL_COLUMNS,
            extrasaction="ignore",
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow(row.values)
        return out.getvalue()

    def observe(self, accumulator: QualityAccumulator, invalid: str) -> None:
        """Feed a rejected order's lines to the data-quality report, as far as they read."""
        rows = self.rows or [Row(self.number, values) for values in _flat(self.text)]
        if not rows:
            accumulator.add_rejected(self.customer_id, invalid)
        for row in rows:
            values = row.values
            accumulator.add(
                values.get("order_id", ""),
                values.get("customer_id"),
                values.get("product_id"),
                _number(values.get("quantity", "")),
                _number(values.get("price", "")),
                invalid,
            )


def read_orders(handle: TextIO, file_format: FileFormat) -> Iterator[FileOrder]:
    """The file's orders in file order; a missing CSV column raises ValueError at once."""
    rows = _csv_rows(handle) if file_format == "csv" else _json_rows(handle)
    for _, group in groupby(rows, key=_group_key):
        items = list(group)
        first = items[0]
        if isinstance(first, FileOrder):
            yield first
        else:
            yield FileOrder(first.number, rows=[row for row in items if isinstance(row, Row)])


def _group_key(item: "Row | FileOrder") -> str:
    """Flat rows group by order id; a whole order (or a row without an id) stands alone."""
    if isinstance(item, FileOrder):
        return f"#{item.number}"
    return item.values["order_id"] or f"#{item.number}"


def _csv_rows(handle: TextIO) -> Iterator[Row]:
    lines = OrderLines(handle)
    width = len(lines.header)
    for row in lines:
        values = lines.values(row)
        if len(row) > width:
            values[EXTRA] = "yes"
        yield Row(lines.line_number, values)


def _json_rows(handle: TextIO) -> Iterator["Row | FileOrder"]:
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            yield FileOrder(number, text=text, error=f"not JSON: {exc.msg}")
            continue
        if not isinstance(document, dict):
            yield FileOrder(number, text=text, error="not a JSON object")
        elif "lines" in document:
            yield FileOrder(number, text=text)
        else:
            values = {key: _text(value) or "" for key, value in document.items()}
            yield Row(number, {name: values.get(name, "") for name in COLUMNS} | values)


def _text(value: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold."""
    if value is None:
        return None
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _document(text: str | None) -> dict[str, Any]:
    try:
        document = json.loads(text or "")
    except json.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def _flat(text: str | None) -> list[dict[str, str]]:
    """The order lines of a rejected JSON `OrderEvent` as flat text values, where readable."""
    document = _document(text)
    customer = document.get("customer")
    customer_id = _text(customer.get("customer_id")) if isinstance(customer, dict) else None
    lines = document.get("lines")
    if not isinstance(lines, list):
        return []
    return [
        {
            "order_id": _text(document.get("order_id")) or "",
            "customer_id": customer_id or "",
            "product_id": _text(line.get("product_id")) or "",
            "quantity": _text(line.get("quantity")) or "",
            "price": (_text(line.get("price")) or "").strip('"'),
        }
        for line in lines
        if isinstance(line, dict)
    ]


def _number(text: str) -> float:
    """A quantity or price as written, NaN when unreadable (validation says why)."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _optional(value: str) -> str | None:
    return value or None


def _order_from_rows(rows: list[Row]) -> OrderEvent:
    first = rows[0].values
    for row in rows:
        if EXTRA in row.values:
            raise ValueError(f"line {row.number}: more fields than the header has")
        if row.values["customer_id"] != first["customer_id"]:
            raise ValueError(f"line {row.number}: customer_id differs from the order's first row")
    statuses = {row.values.get("status") or "placed" for row in rows}
    document: dict[str, Any] = {
        "order_id": first["order_id"],
        "ordered_at": first["ordered_at"],
        # Every line cancelled (or returned) is the whole order cancelled (or returned).
        "status": statuses.pop() if len(statuses) == 1 else "placed",
        "updated_at": _optional(first.get("updated_at", "")),
        "customer": {
            "customer_id": first["customer_id"],
            "region": _optional(first["region"]),
            **{name: _optional(first.get(name, "")) for name in CUSTOMER_COLUMNS},
            **{name: _optional(first.get(name, "")) for name in CONTACT_COLUMNS},
        },
        "lines": [
            {
                "product_id": row.values["product_id"],
                "product_name": _optional(row.values["product_name"]),
                "category": _optional(row.values["category"]),
                "price": row.values["price"],
                "quantity": row.values["quantity"],
                "status": row.values.get("status") or "placed",
            }
            for row in rows
        ],
    }
    try:
        return OrderEvent.model_validate(document)
    except ValidationError as exc:
        raise ValueError("; ".join(_describe(error, rows) for error in exc.errors())) from exc


def _describe(error: Any, rows: list[Row]) -> str:
    """'line 7: quantity: Input should be greater than 0' rather than 'lines.3.quantity'."""
    loc = list(error["loc"])
    where = f"line {rows[0].number}"
    if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and loc[1] < len(rows):
        where = f"line {rows[loc[1]].number}"
        loc = loc[2:]
    elif loc and loc[0] == "customer":
        loc = loc[1:]
    return f"{where}: {'.'.join(str(part) for part in loc) or 'order'}: {error['msg']}"
