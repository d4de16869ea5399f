"""What the company says about a product: the message on topic `products`.

The catalogue makes products exist before they sell (docs/concepts.md, The product
catalogue). Each message is the whole product as the company now keeps it; the newest
(`updated_at`, then content) replaces the stored one whatever the arrival order, so a late
older version never overwrites a newer one.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mgrecs.common.schemas import (
    TEXT_PATTERN,
    Id,
    Message,
    SaneTimestamp,
)

MAX_ATTRIBUTES = 50
"""Free attributes one product may carry."""
AttributeName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=TEXT_PATTERN)
]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=500, pattern=TEXT_PATTERN)]
    | bool
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | float
    | None
)
"""A free attribute's value: text, a boolean, a number (finite; integers a JSON reader keeps
exactly) or null."""
Money = Annotated[Decimal, Field(ge=0, le=1_000_000, decimal_places=2)]


class ProductEvent(Message):
    """A product of the catalogue, as the company keeps it now (schema version 1).

    `cost` or `margin` (= price - cost) may be given, or both if they agree; the message
    published carries the cost. Without `updated_at` the time it was read counts (ingest
    stamps pushes and backfills when it receives them)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema_version": 1,
                    "product_id": "P0201",
                    "name": "Eco Lamp 201",
                    "category": "home-garden",
                    "price": "39.90",
                    "cost": "21.50",
                    "in_stock": True,
                    "active": True,
                    "launched_at": "2026-12-01T00:00:00Z",
                    "attributes": {"brand": "Lumo", "colour": "white"},
                    "updated_at": "2026-12-01T08:00:00Z",
                }
            ]
        },
    )

    schema_version: Literal[1] = 1
    product_id: Id
    name: str | None = Field(default=None, max_length=500, pattern=TEXT_PATTERN)
    category: str | None = Field(default=None, max_length=255, pattern=TEXT_PATTERN)
    price: Money | None = None
    cost: Money | None = Field(default=None, description="what the product costs the company")
    margin: Decimal | None = Field(
        default=None,
        ge=-1_000_000,
        le=1_000_000,
        decimal_places=2,
        description="price - cost: another way to give the cost (needs the price)",
    )
    in_stock: bool = True
    active: bool = True
    """False: never recommended (the company no longer sells it)."""
    launched_at: SaneTimestamp | None = None
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="free attributes (brand, size, colour...): a JSON object of scalars",
    )
    updated_at: SaneTimestamp = Field(
        default_factory=lambda: datetime.now(UTC),
        description="when the company last changed the product: the newest version wins",
    )

    @model_validator(mode="after")
    def _cost_from_margin(self) -> "ProductEvent":
        if self.margin is None:
            return self
        if self.price is None:
            raise ValueError("margin: needs the price (margin = price - cost)")
        cost = self.price - self.margin
        if self.cost is not None and self.cost != cost:
            raise ValueError(
                f"margin: {self.margin} disagrees with price {self.price} - cost {self.cost}"
            )
        if not Decimal(0) <= cost <= Decimal(1_000_000):
            raise ValueError(f"margin: gives a cost of {cost}, outside 0 to 1,000,000")
        self.cost, self.margin = cost, None
        return self

    @property
    def key(self) -> bytes:
        """The Kafka key: the versions of one product stay in order on one partition."""
        return self.product_id.encode()
