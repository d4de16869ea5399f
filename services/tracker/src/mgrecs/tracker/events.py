"""From orders to PutEvents calls: one `purchase` event per line that counts, at most 10 per
call.

Event ids are `<order_id>#<line_no>` (`mgrecs.store.orders.line_event_id`), stable across
replays, so the engine (or AWS) counts a line once however often the tracker forwards it.
Every event names its order and the order's version (`orderId`, `orderVersion` in
`properties`): the self-hosted engine keeps the lines of an order's newest version only, so a
correction replaces the order's purchases in its real-time history. A version with no line
that counts (cancelled, returned, every line gone) is one `cancel` event, which the engine
reads as "this order has no purchases any more". AWS cannot delete a sent event, so AWS gets
no `cancel` events (docs/operations.md, Order corrections, cancellations and returns).
"""

from collections.abc import Sequence
from typing import Any

import orjson

from mgrecs.common.schemas import OrderEvent
from mgrecs.store.orders import line_event_id

MAX_EVENTS_PER_CALL = 10
"""PutEvents' limit on `eventList`."""
EVENT_TYPE = "purchase"
CANCEL_EVENT_TYPE = "cancel"
"""An order version without purchases (the engine drops the order's earlier lines)."""


def _json(properties: dict[str, Any]) -> str:
    """Compact and unescaped: `properties` may be 1,024 characters, and ids may be any
    language's."""
    return orjson.dumps(properties).decode()


def line_events(order: OrderEvent, cancels: bool = True) -> list[dict[str, Any]]:
    """The events of one order version; with `cancels` off (AWS), none for a version
    without lines that count."""
    properties: dict[str, Any] = {"orderId": order.order_id, "orderVersion": order.version.token}
    if order.customer.region:
        properties["region"] = order.customer.region
    sent_at = order.updated_at or order.ordered_at
    lines = order.live_lines()
    if not lines:
        if not cancels:
            return []
        return [
            {
                "eventId": f"{order.order_id}#{CANCEL_EVENT_TYPE}",
                "eventType": CANCEL_EVENT_TYPE,
                "sentAt": sent_at,
                "properties": _json(properties),
            }
        ]
    return [
        {
            "eventId": line_event_id(order.order_id, line_no),
            "eventType": EVENT_TYPE,
            "itemId": line.product_id,
            "sentAt": order.ordered_at,
            "properties": _json({"quantity": line.quantity, **properties}),
        }
        for line_no, line in lines
    ]


def put_events_calls(
    orders: Sequence[OrderEvent], tracking_id: str, cancels: bool = True
) -> list[dict[str, Any]]:
    """Keyword arguments of the PutEvents calls for `orders`, grouped by customer."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        events = line_events(order, cancels)
        if events:
            by_customer.setdefault(order.customer.customer_id, []).extend(events)
    return [
        {
            "trackingId": tracking_id,
            "userId": customer_id,
            "sessionId": customer_id,
            "eventList": events[start : start + MAX_EVENTS_PER_CALL],
        }
        for customer_id, events in by_customer.items()
        for start in range(0, len(events), MAX_EVENTS_PER_CALL)
    ]
