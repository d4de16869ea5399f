"""Repeated order ids within one pushed batch.

`order_id` is the idempotency key: the same order twice in a batch (a retrying upstream that
concatenates) is published once; the same id with different content is a conflict the caller
must resolve, since either version could be the wrong one. Unless their `updated_at` differ:
then they are two versions of the order (a correction), both published, and the newer wins
downstream.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mgrecs.common.schemas import OrderEvent


@dataclass
class Deduplicated:
    """The orders to publish (and their indexes in the batch, for error locations), the ids
    dropped as repeats, and the conflicts (422 problems)."""

    orders: list[OrderEvent] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def drop_repeats(orders: Sequence[OrderEvent]) -> Deduplicated:
    """Keep the first of each order id (and version time); an identical repeat is dropped, a
    different one listed.

    Orders are compared once validated, so spellings that mean the same (ids with surrounding
    blanks, `+01:00` against `Z`) count as identical.
    """
    result = Deduplicated()
    first_index: dict[tuple[str, datetime], int] = {}
    for index, order in enumerate(orders):
        version_time = order.updated_at or order.ordered_at
        earlier = first_index.setdefault((order.order_id, version_time), index)
        if earlier == index:
            result.orders.append(order)
            result.indexes.append(index)
        elif orders[earlier] == order:
            result.duplicates.append(order.order_id)
        else:
            result.conflicts.append(
                {
                    "loc": ["body", "orders", index, "order_id"],
                    "msg": f"order_id {order.order_id!r} at indexes {earlier} and {index} "
                    "with different content",
                    "type": "conflict",
                }
            )
    return result
