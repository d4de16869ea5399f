"""The buy-again list: a customer's own products ranked by the engine's repurchase formula
(the one the `buy-again` recipe is measured with) with the reason, completed up to the limit
by their discovery list, so the frontend always gets a full row."""

from datetime import datetime

import numpy as np

from mgrecs.api.deps import Serving
from mgrecs.api.discovery import discovery
from mgrecs.api.metrics import SOURCES
from mgrecs.api.repository import PurchaseHistory
from mgrecs.api.schemas.shared import Source
from mgrecs.api.schemas.users import BuyAgainItem, BuyAgainList, Slot
from mgrecs.engine.repurchase import SECONDS_PER_DAY, bought_reason, buy_again_scores

ENDPOINT = "buy-again"
"""Its answers in `mgrecs_api_answers_total`: `history` when the customer's own products
filled the list, else the discovery source that completed it."""
DISCOVERY_SLOTS: dict[Source, Slot] = {
    "cache": "cache",
    "realtime": "realtime",
    "popular": "popular",
}


def ranked_purchases(history: PurchaseHistory, now: datetime, limit: int) -> list[BuyAgainItem]:
    """The `limit` likeliest re-buys, best first (ties: more orders, more recent, by id);
    scores relative to the first."""
    purchases = history.purchases
    if not purchases:
        return []
    days = np.array([(now - p.last_at).total_seconds() / SECONDS_PER_DAY for p in purchases])
    scores = buy_again_scores(
        np.array([float(p.orders) for p in purchases]),
        days,
        np.array([p.repeat_rate for p in purchases]),
        np.array([p.interval_days for p in purchases]),
        history.params,
    )
    order = sorted(
        range(len(purchases)),
        key=lambda n: (-scores[n], -purchases[n].orders, days[n], purchases[n].product_id),
    )[:limit]
    top = float(scores[order[0]])
    return [
        BuyAgainItem(
            product_id=purchases[n].product_id,
            score=round(float(scores[n]) / top, 4) if top > 0 else 0.0,
            reason=bought_reason(purchases[n].orders, float(days[n])),
            slot="buy-again",
            orders=purchases[n].orders,
            last_ordered_at=purchases[n].last_at,
        )
        for n in order
    ]


async def buy_again(serving: Serving, user_id: str, limit: int, now: datetime) -> BuyAgainList:
    """The customer's re-buys, then their discovery list's products (those not already in
    it) up to `limit`. Unknown customer: what discovery says (HTTP 404)."""
    history = await serving.repository.purchase_history(user_id)
    items = ranked_purchases(history, now, limit)
    if len(items) >= limit:
        SOURCES.labels(ENDPOINT, "history").inc()
        return BuyAgainList(
            user_id=user_id,
            items=items,
            repurchase_version=history.version,
            discovery_source=None,
        )
    # Asking for `limit` is enough: at most len(items) of them are already in the list.
    found = await discovery(serving, user_id, limit, None, endpoint=ENDPOINT)
    listed = {item.product_id for item in items}
    slot = DISCOVERY_SLOTS.get(found.source)
    for item in found.items:
        if len(items) == limit or slot is None:
            break
        if item.product_id not in listed:
            listed.add(item.product_id)
            items.append(
                BuyAgainItem(
                    product_id=item.product_id,
                    score=item.score,
                    reason=item.reason,
                    slot=slot,
                )
            )
    return BuyAgainList(
        user_id=user_id,
        items=items,
        repurchase_version=history.version,
        discovery_source=found.source,
        model_version=found.model_version,
        experiment=found.experiment,
        stale=found.stale,
        cache_age_seconds=found.cache_age_seconds,
    )
