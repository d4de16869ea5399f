"""The request and answer of `routes.feedback`: events the frontend reports."""

from pydantic import BaseModel, Field

from mgrecs.api.schemas.shared import with_examples
from mgrecs.common.feedback import FeedbackEvent


class FeedbackBatch(BaseModel):
    """Events the frontend reports, in one request (a page's impressions, say)."""

    model_config = with_examples(
        {
            "events": [
                {
                    "customer_id": "C00001",
                    "product_id": "P0007",
                    "kind": "impression",
                    "occurred_at": "2026-11-26T10:15:00Z",
                    "model_version": "v20261126-0300",
                    "source": "cache",
                    "experiment_id": "ease-vs-als",
                    "arm": "treatment",
                },
                {
                    "event_id": "web-7f3a",
                    "customer_id": "C00001",
                    "product_id": "P0007",
                    "kind": "click",
                    "occurred_at": "2026-11-26T10:15:09Z",
                    "experiment_id": "ease-vs-als",
                    "arm": "treatment",
                },
            ]
        },
        forbid_extra=True,
    )

    events: list[FeedbackEvent] = Field(min_length=1, description="1 to max_feedback_events")


class FeedbackAccepted(BaseModel):
    """The events are on topic `feedback`; their ids, in the order given."""

    accepted: int
    event_ids: list[str]
