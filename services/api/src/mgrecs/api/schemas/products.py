"""The answer of `routes.products`: the similar items of a product."""

from datetime import datetime

from pydantic import Field

from mgrecs.api.schemas.shared import CacheFreshness, RecommendedItem, Source, with_examples


class SimilarProducts(CacheFreshness):
    model_config = with_examples(
        {
            "product_id": "P0001",
            "source": "cache",
            "updated_at": "2026-11-26T03:00:00",
            "items": [{"product_id": "P0002", "score": 0.88}],
            "stale": True,
            "cache_age_seconds": 26510.0,
        }
    )

    product_id: str
    source: Source = Field(description="cache, realtime (the engine) or none (engine down)")
    updated_at: datetime | None = Field(description="when the cached row was written (UTC)")
    items: list[RecommendedItem]
