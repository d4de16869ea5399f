"""A business rule as a merchandiser writes it (docs/concepts.md, Merchandising), validated
the same way whether it comes through `/v1/admin/rules` or `mgrecs rules`. Whether its
products and categories exist is the catalogue's to say (`mgrecs.store.rules`)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from mgrecs.common.schemas import ID_PATTERN

RuleKind = Literal["filter", "boost", "pin", "promotion"]
MAX_SLOT = 100
"""A pin's slot: 1 to the longest list the API serves (`limit` at most 100)."""
MAX_TARGET_PRODUCTS = 1000
MAX_TARGET_CATEGORIES = 100
MAX_ATTRIBUTES = 20
MAX_FACTOR = 1000.0
MAX_PRICE = 1e9
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

EXAMPLES: list[Any] = [
    {"kind": "filter", "name": "no knives", "target": {"categories": ["knives"]}},
    {
        "kind": "boost",
        "name": "Acme week",
        "target": {"attributes": {"brand": "Acme"}},
        "factor": 1.5,
        "starts_at": "2026-12-07T00:00:00Z",
        "ends_at": "2026-12-14T00:00:00Z",
    },
    {"kind": "pin", "region": "north", "target": {"products": ["P0007"]}, "slot": 1},
    {"kind": "promotion", "target": {"products": ["P0012", "P0044"]}, "share": 0.2},
]

CacheId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ID_PATTERN)]
Name = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]
Category = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ID_PATTERN)]
Region = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00]*$")]
    | bool
    | Annotated[int, Field(ge=-(10**15), le=10**15)]
    | Annotated[float, Field(allow_inf_nan=False)]
)
Price = Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)]


def _distinct(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


def _in_range(value: datetime | None) -> datetime | None:
    if value is not None and not EARLIEST <= value <= LATEST:
        raise ValueError("must be between 2000-01-01 and 2200-01-01")
    return value


Instant = Annotated[AwareDatetime | None, AfterValidator(_in_range)]


class Target(BaseModel):
    """Which products a rule is about: every condition given holds for them."""

    model_config = ConfigDict(extra="forbid")

    products: Annotated[
        list[CacheId] | None,
        Field(max_length=MAX_TARGET_PRODUCTS, description="product ids (pins: exactly one)"),
        AfterValidator(_distinct),
    ] = None
    categories: Annotated[
        list[Category] | None,
        Field(max_length=MAX_TARGET_CATEGORIES),
        AfterValidator(_distinct),
    ] = None
    min_price: Price | None = Field(default=None, description="inclusive")
    max_price: Price | None = Field(default=None, description="inclusive")
    out_of_stock: bool = Field(default=False, description="true: products not in stock")
    inactive: bool = Field(default=False, description="true: products withdrawn from sale")
    attributes: dict[AttributeName, AttributeValue] | None = Field(
        default=None,
        max_length=MAX_ATTRIBUTES,
        description='attributes the product has, e.g. {"brand": "Acme"}',
    )

    @model_validator(mode="after")
    def _price_range(self) -> "Target":
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError("target.max_price: below min_price, the price range is empty")
        return self

    @property
    def empty(self) -> bool:
        return not (
            self.products
            or self.categories
            or self.min_price is not None
            or self.max_price is not None
            or self.out_of_stock
            or self.inactive
            or self.attributes
        )


class RuleFields(BaseModel):
    """A rule as a merchandiser writes it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": list(EXAMPLES)})

    kind: RuleKind = Field(
        description="filter: exclude the target's products; boost: multiply their scores by "
        "`factor` (< 1 buries); pin: the one product of the target at `slot`; promotion: the "
        "target's products take `share` of the slots (reason `promoted`)"
    )
    name: Name = ""
    region: Region | None = Field(default=None, description="only lists of this region")
    target: Target
    factor: Annotated[float, Field(gt=0, le=MAX_FACTOR, allow_inf_nan=False)] | None = Field(
        default=None, description="boost: > 1 boosts, < 1 buries (required)"
    )
    slot: Annotated[int, Field(ge=1, le=MAX_SLOT)] | None = Field(
        default=None, description="pin: 1-based position (required)"
    )
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        default=None, description="promotion: share of the slots, 0-1 (required)"
    )
    starts_at: Instant = Field(default=None, description="in force from (open when null)")
    ends_at: Instant = Field(default=None, description="in force until, excluded")
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> "RuleFields":
        if self.starts_at and self.ends_at and self.starts_at >= self.ends_at:
            raise ValueError("ends_at: not after starts_at, the date window is empty")
        if self.target.empty:
            raise ValueError("target: names no products (give at least one condition)")
        products = self.target.products or []
        if self.kind == "boost" and self.factor is None:
            raise ValueError("factor: a boost needs a positive factor")
        if self.kind == "pin":
            if self.slot is None:
                raise ValueError("slot: a pin needs a slot (1-100)")
            if len(products) != 1 or not _only_products(self.target):
                raise ValueError("target.products: a pin names exactly one product, nothing else")
        if self.kind == "promotion":
            if self.share is None:
                raise ValueError("share: a promotion needs a share of the slots (0-1)")
            if not products or not _only_products(self.target):
                raise ValueError("target.products: a promotion names its products, nothing else")
        for name, kind in (("factor", "boost"), ("slot", "pin"), ("share", "promotion")):
            if getattr(self, name) is not None and self.kind != kind:
                raise ValueError(f"{name}: only a {kind} has one")
        return self


def _only_products(target: Target) -> bool:
    return target.model_copy(update={"products": None}).empty


class RulePatch(BaseModel):
    """The fields to change; the others stay as they are."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"factor": 2.0}, {"enabled": False}]}
    )

    kind: RuleKind | None = None
    name: Name | None = None
    region: Region | None = None
    target: dict[str, Any] | None = None
    factor: float | None = None
    slot: int | None = None
    share: float | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    enabled: bool | None = None
