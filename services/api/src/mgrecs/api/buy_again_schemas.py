"""Response model of `GET /v1/users/{id}/buy-again`: the customer's own products likeliest to
be bought again, then their discovery list (shown in OpenAPI)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mgrecs.api.experiment_schemas import ExperimentTag
from mgrecs.api.schemas import CacheFreshness, Source

Slot = Literal["buy-again", "cache", "realtime", "popular"]


class BuyAgainItem(BaseModel):
    """One product of the list and the part of it that put it there."""

    product_id: str
    score: float = Field(
        description="buy-again: relative to the likeliest re-buy (1.0); otherwise the "
        "discovery list's score. 0.0-1.0, higher is better within a slot"
    )
    reason: str | None = None
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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "C00001",
                    "items": [
                        {
                            "product_id": "P0042",
                            "score": 1.0,
                            "reason": "bought 5 times, last 3 weeks ago",
                            "slot": "buy-again",
                            "orders": 5,
                            "last_ordered_at": "2026-11-15T09:12:00Z",
                        },
                        {
                            "product_id": "P0007",
                            "score": 0.93,
                            "reason": "bought together with P0042",
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
            ]
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
