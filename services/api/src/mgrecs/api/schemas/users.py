"""The answers of `routes.users`: a customer's recommendations, the ranking of the products
asked, and buy-again (the customer's own products likeliest to be bought again, then their
discovery list)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from mgrecs.api.schemas.experiments import ExperimentTag
from mgrecs.api.schemas.shared import (
    CacheFreshness,
    CacheId,
    RecommendedItem,
    Source,
    with_examples,
)


class UserRecommendations(CacheFreshness):
    model_config = with_examples(
        {
            "user_id": "C00001",
            "source": "cache",
            "updated_at": "2026-11-26T03:00:00",
            "items": [
                {
                    "product_id": "P0007",
                    "score": 0.93,
                    "reason": "bought Family Cushion 95, Oak Lamp",
                    "reason_product_ids": ["P0015", "P0039"],
                },
                {"product_id": "P0012", "score": 0.71, "reason": None, "reason_product_ids": []},
            ],
            "model_version": "20261122T030000Z-3f9a1c",
            "stale": False,
            "cache_age_seconds": 4210.5,
        }
    )

    user_id: str
    source: Source = Field(
        description="cache: nightly batch; realtime: the engine; popular: regional fallback"
    )
    updated_at: datetime | None = Field(description="when the cached row was written (UTC)")
    items: list[RecommendedItem]
    model_version: str | None = Field(
        default=None,
        description="the model version that made the list: the one the cache generation was "
        "scored with, or the one the engine serves (the customer's arm's in an experiment); "
        "null for popularity: echo it in feedback",
    )
    experiment: ExperimentTag | None = Field(
        default=None, description="the customer's experiment arm: echo it in feedback"
    )


MAX_RANK_PRODUCTS = 500
"""GetPersonalizedRanking's limit on one input list."""


def _distinct(values: list[str]) -> list[str]:
    """The product ids once each, in their first order."""
    return list(dict.fromkeys(values))


class RankRequest(BaseModel):
    """The products to put in order for one customer."""

    model_config = with_examples({"product_ids": ["P0007", "P0012"]}, forbid_extra=True)

    product_ids: Annotated[
        list[CacheId],
        Field(min_length=1, max_length=MAX_RANK_PRODUCTS, description="1-500 product ids"),
        AfterValidator(_distinct),
    ]


class UserRanking(BaseModel):
    """The asked products, best first for the customer (every one of them, once)."""

    user_id: str
    source: Source = Field(description="realtime: the engine; popular: it was down")
    items: list[RecommendedItem]
    model_version: str | None = Field(
        default=None,
        description="realtime: the model version the engine serves (in AWS mode the active "
        "one, which the ranking campaign serves); null for popularity",
    )


Slot = Literal["buy-again", "cache", "realtime", "popular"]


class BuyAgainItem(BaseModel):
    """One product of the list and the part of it that put it there."""

    product_id: str
    score: float = Field(
        description="buy-again: relative to the likeliest re-buy (1.0); otherwise the "
        "discovery list's score. 0.0-1.0, higher is better within a slot"
    )
    reason: str | None = None
    reason_product_ids: list[str] = Field(
        default_factory=list,
        description="the products `reason` names, by id, in its order (the text shows "
        "their names; docs/api.md, Scores and reasons)",
    )
    slot: Slot = Field(
        description="buy-again: from the customer's own orders; cache, realtime or popular: "
        "the discovery list that completed the answer (as /recommendations' `source`)"
    )
    orders: int | None = Field(
        default=None, description="buy-again: distinct orders that contained it (else null)"
    )
    last_ordered_at: datetime | None = Field(
        default=None, description="buy-again: when the latest of them was placed (else null)"
    )


class BuyAgainList(CacheFreshness):
    """Buy-again items first (best first), then the discovery list's, each product once."""

    model_config = with_examples(
        {
            "user_id": "C00001",
            "items": [
                {
                    "product_id": "P0042",
                    "score": 1.0,
                    "reason": "bought 5 times, last 3 weeks ago",
                    "reason_product_ids": [],
                    "slot": "buy-again",
                    "orders": 5,
                    "last_ordered_at": "2026-11-15T09:12:00Z",
                },
                {
                    "product_id": "P0007",
                    "score": 0.93,
                    "reason": "bought together with Family Cushion 95",
                    "reason_product_ids": ["P0042"],
                    "slot": "cache",
                    "orders": None,
                    "last_ordered_at": None,
                },
            ],
            "repurchase_version": "20261122T030000Z-3f9a1c",
            "discovery_source": "cache",
            "model_version": "20261122T030000Z-3f9a1c",
            "experiment": None,
            "stale": False,
            "cache_age_seconds": 4210.5,
        }
    )

    user_id: str
    items: list[BuyAgainItem]
    repurchase_version: str | None = Field(
        description="the active model version whose repeat rates, intervals and parameters "
        "scored the buy-again items (null: none stored yet, the defaults did)"
    )
    discovery_source: Source | None = Field(
        description="where the discovery items came from (null: the customer's own products "
        "filled the list, so none was asked)"
    )
    model_version: str | None = Field(
        default=None, description="the version that made the discovery items: echo it in feedback"
    )
    experiment: ExperimentTag | None = Field(
        default=None, description="the customer's experiment arm: echo it in feedback"
    )
