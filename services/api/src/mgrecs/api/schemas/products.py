"""The answers of `routes.products`: the similar items of a product, a catalogue search."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import CacheFreshness, RecommendedItem, with_examples

SimilarSource = Literal["cache", "realtime", "catalogue", "none"]


class SimilarProducts(CacheFreshness):
    model_config = with_examples(
        {
            "product_id": "P0001",
            "source": "cache",
            "updated_at": "2026-11-26T03:00:00",
            "items": [{"product_id": "P0002", "score": 0.88}],
            "model_version": "20261122T030000Z-3f9a1c",
            "stale": True,
            "cache_age_seconds": 26510.0,
        }
    )

    product_id: str
    source: SimilarSource = Field(
        description="cache, realtime (the engine), catalogue (a product no model knows: "
        "same category and attributes) or none (nothing to say)"
    )
    updated_at: datetime | None = Field(description="when the cached row was written (UTC)")
    items: list[RecommendedItem]
    model_version: str | None = Field(
        default=None,
        description="the model version that made the list: the one the cache generation was "
        "scored with, or the one the engine serves; null from the catalogue or none",
    )


class CatalogueProduct(BaseModel):
    """A product as the catalogue has it (sold or not)."""

    product_id: str
    name: str | None
    category: str | None
    price: float | None
    in_stock: bool
    active: bool = Field(description="false: never recommended")
    launched_at: datetime | None
    attributes: dict[str, Any] = Field(description="free attributes (brand, size...)")
    sold: bool = Field(description="whether any order counts it")


class ProductSearch(BaseModel):
    model_config = with_examples(
        {
            "query": "lamp",
            "items": [
                {
                    "product_id": "P0201",
                    "name": "Eco Lamp 201",
                    "category": "home-garden",
                    "price": 39.9,
                    "in_stock": True,
                    "active": True,
                    "launched_at": "2026-12-01T00:00:00Z",
                    "attributes": {"brand": "Lumo"},
                    "sold": False,
                }
            ],
        }
    )

    query: str | None
    items: list[CatalogueProduct]


class ProductNames(BaseModel):
    """The catalogue names of the products asked for (a product without a name, or unknown,
    is left out: show its id)."""

    model_config = with_examples({"names": {"P0015": "Family Cushion 95", "P0039": "Eco Lamp"}})

    names: dict[str, str]
