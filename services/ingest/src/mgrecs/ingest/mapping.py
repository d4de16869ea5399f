"""Declarative field mapping from the company's order records to `OrderEvent` (and, when the
file has a `products` section, from its product records to `ProductEvent`).

A new upstream format is a new mapping file, not new code. Paths are dotted (`customer.id`);
the file is validated when the connector starts, and a bad file is refused with the name of
the offending field. An order's (and a line's) status is a path too, with the company's words
for cancelled and returned in `status_values`. See docs/connector.md, Field mapping.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.schemas import MAX_AHEAD, OrderEvent, OrderStatus
from mgrecs.store.watermarks import Position

DOTTED = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"


class MappingError(ValueError):
    """The mapping file is unreadable or invalid; the message names the bad field."""


class CustomerFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(pattern=DOTTED)
    age: str | None = Field(default=None, pattern=DOTTED)
    gender: str | None = Field(default=None, pattern=DOTTED)
    city: str | None = Field(default=None, pattern=DOTTED)
    region: str | None = Field(default=None, pattern=DOTTED)
    email: str | None = Field(default=None, pattern=DOTTED)
    phone: str | None = Field(default=None, pattern=DOTTED)
    """Contact details, only for merging customers (docs/concepts.md, Customer identities)."""


class LineFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=DOTTED)
    quantity: str = Field(pattern=DOTTED)
    price: str = Field(pattern=DOTTED)
    product_name: str | None = Field(default=None, pattern=DOTTED)
    category: str | None = Field(default=None, pattern=DOTTED)
    status: str | None = Field(default=None, pattern=DOTTED)
    """A line's own status (a line returned alone), read through `status_values`."""


class QueryParams(BaseModel):
    """Names of the query parameters the company's API takes."""

    model_config = ConfigDict(extra="forbid")

    updated_since: str = "updated_since"
    cursor: str = "cursor"
    page: str = "page"
    page_size: str = "per_page"


class ResponseFields(BaseModel):
    """Where a response page keeps its records and its next cursor / has-more flag."""

    model_config = ConfigDict(extra="forbid")

    records: str = Field(default="orders", pattern=DOTTED)
    next_cursor: str = Field(default="next_cursor", pattern=DOTTED)
    has_more: str = Field(default="has_more", pattern=DOTTED)


Getter = Callable[[Any], Any]


def getter(path: str) -> Getter:
    """A function reading the value at a dotted path (None when a step is missing), made once
    per mapping: the connector reads some twenty paths per record."""
    steps = tuple(path.split("."))
    if len(steps) == 1:
        key = steps[0]
        return lambda record: record.get(key) if isinstance(record, dict) else None

    def get(record: Any) -> Any:
        value = record
        for part in steps:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def _getters(fields: BaseModel) -> list[tuple[str, Getter]]:
    return [(name, getter(path)) for name, path in vars(fields).items() if path]


@dataclass(frozen=True)
class _Plan:
    """The mapping's paths as getters."""

    order_id: Getter
    updated_at: Getter
    ordered_at: Getter
    lines: Getter
    status: Getter | None
    line_status: Getter | None
    customer: list[tuple[str, Getter]]
    line: list[tuple[str, Getter]]


PRODUCT_FIELDS = (
    "product_id",
    "updated_at",
    "name",
    "category",
    "price",
    "cost",
    "margin",
    "in_stock",
    "active",
    "launched_at",
    "attributes",
)
"""The fields of a `ProductEvent` a mapping file may point at."""


class ProductFields(BaseModel):
    """The `products` section: where the company's catalogue is and how its records read.
    Paths are relative to one product record; the same query parameters as orders."""

    model_config = ConfigDict(extra="forbid")

    path: str = "/products"
    response: ResponseFields = ResponseFields(records="products")
    product_id: str = Field(pattern=DOTTED)
    updated_at: str = Field(pattern=DOTTED)
    """The company's last change of the product: the watermark, and the newest version wins."""
    name: str | None = Field(default=None, pattern=DOTTED)
    category: str | None = Field(default=None, pattern=DOTTED)
    price: str | None = Field(default=None, pattern=DOTTED)
    cost: str | None = Field(default=None, pattern=DOTTED)
    margin: str | None = Field(default=None, pattern=DOTTED)
    """price - cost, for a company that keeps margins rather than costs."""
    in_stock: str | None = Field(default=None, pattern=DOTTED)
    """A boolean, or a quantity (in stock when above 0)."""
    active: str | None = Field(default=None, pattern=DOTTED)
    launched_at: str | None = Field(default=None, pattern=DOTTED)
    attributes: str | None = Field(default=None, pattern=DOTTED)
    """A JSON object of free attributes (brand, size...)."""

    @cached_property
    def getters(self) -> list[tuple[str, Getter]]:
        """The `ProductEvent` fields the file maps, as getters."""
        return [(name, getter(path)) for name in PRODUCT_FIELDS if (path := getattr(self, name))]


class FieldMapping(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(extra="forbid")

    orders_path: str = "/orders"
    query: QueryParams = QueryParams()
    response: ResponseFields = ResponseFields()
    order_id: str = Field(pattern=DOTTED)
    updated_at: str = Field(pattern=DOTTED)
    ordered_at: str = Field(pattern=DOTTED)
    status: str | None = Field(default=None, pattern=DOTTED)
    """Where the order's status is; without it every order is `placed`."""
    status_values: dict[str, OrderStatus] = {}
    """The company's status values that mean `cancelled` or `returned` (or `placed`),
    compared without case; any other value (paid, shipped...) is `placed`."""
    customer: CustomerFields
    lines: str = Field(pattern=DOTTED)
    """Path of the list of order lines; `line` paths are relative to one line."""
    line: LineFields
    products: ProductFields | None = None
    """The company's catalogue; without it the connector pulls orders only."""

    @cached_property
    def plan(self) -> _Plan:
        return _Plan(
            order_id=getter(self.order_id),
            updated_at=getter(self.updated_at),
            ordered_at=getter(self.ordered_at),
            lines=getter(self.lines),
            status=getter(self.status) if self.status else None,
            line_status=getter(self.line.status) if self.line.status else None,
            customer=_getters(self.customer),
            line=_getters(self.line.model_copy(update={"status": None})),
        )

    @cached_property
    def statuses(self) -> dict[str, OrderStatus]:
        """`status_values` with case folded."""
        return {value.casefold(): status for value, status in self.status_values.items()}

    def status_of(self, value: Any) -> OrderStatus:
        """Our status for a company status value (`placed` unless listed)."""
        if not isinstance(value, str):
            return "placed"
        return self.statuses.get(value.strip().casefold(), "placed")


def load_mapping(path: str | Path) -> FieldMapping:
    """Read and validate a mapping file, or say exactly what is wrong with it."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MappingError(f"mapping file {path}: cannot read it: {exc}") from exc
    try:
        return FieldMapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise MappingError(f"mapping file {path} is invalid: {problems}") from exc


class MalformedRecordError(ValueError):
    """A record that cannot become an `OrderEvent`; the message says why."""


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path, or None when any step is missing."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedRecordError(f"{name} is missing or not a string: {value!r}")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedRecordError(f"{name} is not an ISO timestamp: {value!r}") from exc
    if stamp.tzinfo is None:
        raise MalformedRecordError(f"{name} has no timezone: {value!r}")
    try:
        utc = stamp.astimezone(UTC)
    except OverflowError as exc:  # an offset past year 1 or 9999
        raise MalformedRecordError(f"{name} is out of range in UTC: {value!r}") from exc
    if utc > datetime.now(UTC) + MAX_AHEAD:
        # As a position it would move the watermark past every record still to come.
        raise MalformedRecordError(f"{name} is more than a day in the future: {value!r}")
    return utc


def position_of(record: Any, mapping: FieldMapping) -> Position:
    """The record's watermark position; malformed when it has no usable id or updated_at."""
    plan = mapping.plan
    order_id = plan.order_id(record)
    if not isinstance(order_id, str | int) or str(order_id) == "":
        raise MalformedRecordError(f"order id ({mapping.order_id}) is missing: {order_id!r}")
    return Position(_timestamp(plan.updated_at(record), mapping.updated_at), str(order_id))


def _pick(record: Any, getters: list[tuple[str, Getter]]) -> dict[str, Any]:
    return {name: value for name, get in getters if (value := get(record)) is not None}


def _line(line: Any, mapping: FieldMapping) -> dict[str, Any]:
    fields = _pick(line, mapping.plan.line)
    if mapping.plan.line_status is not None:
        fields["status"] = mapping.status_of(mapping.plan.line_status(line))
    return fields


def map_record(record: Any, mapping: FieldMapping) -> OrderEvent:
    """The `OrderEvent` a company record stands for, or MalformedRecordError with the reason."""
    plan = mapping.plan
    lines = plan.lines(record)
    if not isinstance(lines, list):
        raise MalformedRecordError(f"order lines ({mapping.lines}) are missing or not a list")
    customer = _pick(record, plan.customer)
    if isinstance(customer.get("customer_id"), int):
        customer["customer_id"] = str(customer["customer_id"])
    status = mapping.status_of(plan.status(record)) if plan.status is not None else "placed"
    try:
        return OrderEvent.model_validate(
            {
                "order_id": str(plan.order_id(record)),
                "ordered_at": _timestamp(plan.ordered_at(record), mapping.ordered_at),
                "updated_at": _timestamp(plan.updated_at(record), mapping.updated_at),
                "status": status,
                "customer": customer,
                "lines": [_line(line, mapping) for line in lines],
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise MalformedRecordError(problems) from exc


def product_position(record: Any, fields: ProductFields) -> Position:
    """A product record's watermark position (updated_at, product id); malformed when it has
    no usable id or updated_at."""
    product_id = getter(fields.product_id)(record)
    if not isinstance(product_id, str | int) or str(product_id) == "":
        raise MalformedRecordError(f"product id ({fields.product_id}) is missing: {product_id!r}")
    return Position(
        _timestamp(getter(fields.updated_at)(record), fields.updated_at), str(product_id)
    )


def map_product(record: Any, fields: ProductFields) -> ProductEvent:
    """The `ProductEvent` a company product record stands for, or MalformedRecordError."""
    values = _pick(record, fields.getters)
    if isinstance(values.get("product_id"), int):
        values["product_id"] = str(values["product_id"])
    stock = values.get("in_stock")
    if isinstance(stock, int | float) and not isinstance(stock, bool):
        values["in_stock"] = stock > 0
    values["updated_at"] = _timestamp(values.get("updated_at"), fields.updated_at)
    try:
        return ProductEvent.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'product'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise MalformedRecordError(problems) from exc
