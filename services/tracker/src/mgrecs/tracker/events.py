"""From orders to PutEvents calls: one `purchase` event per order line, at most 10 per call.

Event ids are `<order_id>#<line_no>`, stable across replays, so the engine (or AWS) counts a
line once however often the tracker forwards it.
"""

import json
from collections.abc import Sequence
from typing import Any

from mgrecs.common.schemas import OrderEvent

MAX_EVENTS_PER_CALL = 10
"""PutEvents' limit on `eventList`."""
EVENT_TYPE = "purchase"


def line_events(order: OrderEvent) -> list[dict[str, Any]]:
    properties: dict[str, Any] = {}
    if order.customer.region:
        properties["region"] = order.customer.region
    return [
        {
            "eventId": f"{order.order_id}#{line_no}",
            "eventType": EVENT_TYPE,
            "itemId": line.product_id,
            "sentAt": order.ordered_at,
            "properties": json.dumps({"quantity": line.quantity, **properties}),
        }
        for line_no, line in enumerate(order.lines, start=1)
    ]


def put_events_calls(orders: Sequence[OrderEvent], tracking_id: str) -> list[dict[str, Any]]:
    """Keyword arguments of the PutEvents calls for `orders`, grouped by customer."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        by_customer.setdefault(order.customer.customer_id, []).extend(line_events(order))
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
