"""New products in the lists served: the "new in your categories" slot of a customer's list
and the new products among a product's similar items, added to whatever source answered
(cache, real time, popularity), since no model built before their launch knows them.
The choice and the placement are `mgrecs.engine.new_items`'; `new_items_share` sets the slots."""

from datetime import datetime

from mgrecs.api.repository import Repository
from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.common.settings import Settings
from mgrecs.engine.new_items import new_for_customer, new_like, new_slot_count, place_new
from mgrecs.engine.records import Scored

LIKE_CANDIDATES = 100
"""New products read per similar-items request beyond those listed: ranked by shared
attributes among them (the database orders by co-purchases and buyers only)."""


def _scored(items: list[RecommendedItem]) -> list[Scored]:
    return [Scored(i.product_id, i.score, i.reason or "") for i in items]


def _items(scored: list[Scored]) -> list[RecommendedItem]:
    return [
        RecommendedItem(product_id=s.item_id, score=s.score, reason=s.reason or None)
        for s in scored
    ]


async def customer_items_with_new(
    repository: Repository,
    settings: Settings,
    now: datetime,
    user_id: str,
    items: list[RecommendedItem],
    limit: int,
    categories: list[str] | None,
) -> list[RecommendedItem]:
    """`items` (a customer's list, best first) with the new products of the customer's
    categories (of `categories` when asked) at their `new_items_share` of the `limit`
    slots, reason `new in <category>`; as they were when there is none or the share is 0."""
    share = settings.new_items_share
    slots = new_slot_count(limit, share, limit)
    if slots == 0:
        return items
    listed = {i.product_id for i in items}
    candidates, weights = await repository.new_for_customer(
        user_id, now, settings.new_items_days, categories, slots + len(listed)
    )
    new = new_for_customer(candidates, weights, listed, slots)
    if not new:
        return items
    return _items(place_new(_scored(items), new, limit, share))


async def similar_items_with_new(
    repository: Repository,
    settings: Settings,
    now: datetime,
    product_id: str,
    items: list[RecommendedItem],
    limit: int,
) -> list[RecommendedItem]:
    """`items` (a product's similar items, best first) with the new products bought with
    it or of its category at their `new_items_share` of the `limit` slots."""
    share = settings.new_items_share
    slots = new_slot_count(limit, share, limit)
    if slots == 0:
        return items
    listed = {i.product_id for i in items}
    candidates, category, attributes = await repository.new_like(
        product_id, now, settings.new_items_days, slots + len(listed) + LIKE_CANDIDATES
    )
    new = new_like(product_id, category, attributes, candidates, listed, slots)
    if not new:
        return items
    return _items(place_new(_scored(items), new, limit, share))
