"""The value types the engine takes and gives back."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Interaction:
    """One purchased order line, as the engine sees it (slots: a retrain holds millions)."""

    customer_id: str
    product_id: str
    quantity: int
    ordered_at: datetime
    region: str | None


@dataclass(frozen=True)
class Scored:
    """A recommended item: score in 0.0-1.0 (higher is better) and why."""

    item_id: str
    score: float
    reason: str


@dataclass(frozen=True)
class ProductInfo:
    """A catalogue product: what the content back-off and the filters know about it."""

    product_id: str
    name: str | None = None
    category: str | None = None
    price: float | None = None
    active: bool = True
