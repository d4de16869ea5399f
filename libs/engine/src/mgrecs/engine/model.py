"""INTERFACE STUB — to be implemented (popularity + item co-occurrence model)."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Interaction:
    """One purchased order line, as the engine sees it."""

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


class CooccurrenceModel:
    """Popularity (global and per region) plus item-to-item co-occurrence (cosine-damped)."""

    @classmethod
    def fit(cls, interactions: list[Interaction]) -> "CooccurrenceModel":
        raise NotImplementedError

    def save(self, path: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, path: Path) -> "CooccurrenceModel":
        raise NotImplementedError

    def history(self, customer_id: str) -> list[str]:
        """Products the customer bought in the training data (empty when unknown)."""
        raise NotImplementedError

    def region_of(self, customer_id: str) -> str | None:
        raise NotImplementedError

    def recommend(
        self, history: list[str], region: str | None, k: int, exclude_purchased: bool = True
    ) -> list[Scored]:
        """Top-k for a customer with this purchase history; popularity in `region` fills up."""
        raise NotImplementedError

    def recommend_all(self, k: int, customer_ids: list[str] | None = None) -> dict[str, list[Scored]]:
        """Vectorised top-k for many known customers at once (batch inference)."""
        raise NotImplementedError

    def similar_items(self, item_id: str, k: int) -> list[Scored]:
        raise NotImplementedError

    def rank(self, history: list[str], region: str | None, item_ids: list[str]) -> list[Scored]:
        """Re-rank `item_ids` for a customer; unknown items go last, none is dropped."""
        raise NotImplementedError

    def popular(self, region: str | None, k: int) -> list[Scored]:
        raise NotImplementedError

    @property
    def item_ids(self) -> list[str]:
        raise NotImplementedError

    @property
    def customer_ids(self) -> list[str]:
        raise NotImplementedError
