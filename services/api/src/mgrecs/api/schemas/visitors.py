"""The answer of `routes.visitors`: a visitor's list (no customer id)."""

from typing import Literal

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import RecommendedItem, with_examples


class VisitorRecommendations(BaseModel):
    model_config = with_examples(
        {
            "region": "north",
            "source": "popular",
            "items": [
                {"product_id": "P0007", "score": 1.0, "reason": "popular in north"},
                {"product_id": "P0031", "score": 0.8, "reason": "trending in north"},
            ],
        }
    )

    region: str | None = Field(description="the region asked (null: none asked)")
    source: Literal["popular", "none"] = Field(
        description="popular: the region's best sellers and trending products (everywhere's "
        "when the region bought nothing lately); none: nothing was bought lately"
    )
    items: list[RecommendedItem]
