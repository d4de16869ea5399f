"""What engine replicas tell each other: the message on topic `engine-events`.

A replica's PutEvents publishes the events it accepts (one message per accepted request, or
per 1,000 of its events) and every replica folds each message into its real-time history, so
all of them answer the same (mgrecs.engine_service.feed). The record's timestamp is when the
events were accepted.
"""

from pydantic import Field

from mgrecs.common.schemas import Message

Text = str | None


class AcceptedEvent(Message):
    """One event as the engine holds it (what answers need of a PutEvents event); a member
    without a value is null or left out."""

    user_id: str = Field(min_length=1, max_length=256)
    event_id: Text = None
    item_id: Text = None
    region: Text = None
    order_id: Text = Field(default=None, description="`properties.orderId` (the tracker's)")
    order_version: Text = Field(default=None, description="`properties.orderVersion`")


class AcceptedEvents(Message):
    """Events one PutEvents request had accepted, all or 1,000 of them (schema version 1)."""

    id: str = Field(
        min_length=1,
        max_length=64,
        description="unique per request: the publishing replica recognises its own",
    )
    events: list[AcceptedEvent]
