"""What the frontend reports back about recommendations: the message on topic `feedback`.

Impressions, clicks, add-to-carts and purchases, each tagged with the model version (and the
experiment arm) that produced the recommendation, feed click-through rate, conversion and
revenue per model version and per arm (docs/concepts.md, Feedback and
experiments).
"""

import hashlib
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mgrecs.common.schemas import Id, Message, SaneTimestamp

FeedbackKind = Literal["impression", "click", "add_to_cart", "purchase"]
FeedbackSource = Literal["cache", "realtime", "popular"]


class FeedbackEvent(Message):
    """One thing a customer did with a recommended product (schema version 1).

    `event_id` makes writes idempotent: a client that retries sends the same id; without one,
    the id is derived from the event's content, so a resent copy of it is the same event."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C00001",
                    "product_id": "P0007",
                    "kind": "purchase",
                    "occurred_at": "2026-11-26T10:15:00Z",
                    "model_version": "v20261126-0300",
                    "source": "cache",
                    "experiment_id": "ease-vs-als",
                    "arm": "treatment",
                    "revenue": "19.80",
                }
            ]
        },
    )

    schema_version: Literal[1] = 1
    event_id: Id | None = Field(
        default=None, description="the client's id for the event; derived from it when absent"
    )
    customer_id: Id
    product_id: Id
    kind: FeedbackKind
    occurred_at: SaneTimestamp = Field(
        description="when it happened, with a time zone (stored in UTC, so equal instants "
        "give equal derived ids), from 2000 to a day ahead"
    )
    model_version: Id | None = Field(default=None, description="as the recommendation said")
    source: FeedbackSource | None = Field(default=None, description="as the recommendation said")
    experiment_id: Id | None = None
    arm: Id | None = None
    revenue: Decimal | None = Field(
        default=None, ge=0, le=1_000_000, decimal_places=2, description="purchases only"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "FeedbackEvent":
        if self.revenue is not None and self.kind != "purchase":
            raise ValueError("revenue: only a purchase has revenue")
        if (self.experiment_id is None) != (self.arm is None):
            raise ValueError("experiment_id and arm: give both or neither")
        if self.event_id is None:
            self.event_id = derived_event_id(self)
        return self


def derived_event_id(event: FeedbackEvent) -> str:
    """A stable id from everything the event says (the same report twice, the same id)."""
    parts = (
        event.customer_id,
        event.product_id,
        event.kind,
        event.occurred_at.isoformat(),
        event.model_version or "",
        event.source or "",
        event.experiment_id or "",
        event.arm or "",
        "" if event.revenue is None else f"{event.revenue:.2f}",
    )
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"fb-{digest}"
