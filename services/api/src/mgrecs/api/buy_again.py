"""The buy-again list: a customer's own products ranked by the engine's repurchase formula
(the one the `buy-again` recipe is measured with) with the reason, completed up to the limit
by their discovery list, so the frontend always gets a full row."""

from contextlib import suppress
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np

from mgrecs.api.deps import Serving
from mgrecs.api.discovery import customer_rules, discovery
from mgrecs.api.metrics import count_answer
from mgrecs.api.repository import CachedList, PurchaseHistory
from mgrecs.api.schemas.shared import RecommendedItem, Source
from mgrecs.api.schemas.users import BuyAgainList, Slot
from mgrecs.engine.business_rules import Applicable
from mgrecs.engine.repurchase import (
    SECONDS_PER_DAY,
    bought_reason,
    buy_again_score,
    buy_again_scores,
)

ENDPOINT = "buy-again"
"""Its answers in `mgrecs_api_answers_total`: `history` when the customer's own products
filled the list, else the discovery source that completed it."""
DISCOVERY_SLOTS: dict[Source, Slot] = {
    "cache": "cache",
    "realtime": "realtime",
    "popular": "popular",
}


def buy_again_source(discovery_source: Source | None) -> str:
    """What a buy-again answer was served from, as recorded on `served`: `history` (the
    customer's own products only), else `history+` the discovery source that completed it."""
    return "history" if discovery_source is None else f"history+{discovery_source}"


ItemFields = dict[str, Any]
"""A `BuyAgainItem`'s fields: the answer's items are validated once, with the list (a model
per item costs twice as much, `model_construct` more still: bench/RESULTS.md)."""

SHORT_HISTORY = 15
"""Histories up to this many products rank in plain Python, longer ones with numpy, whose
per-call overhead pays off from about 16 entries (bench/RESULTS.md, 2026-12-07 evening)."""


def ranked_purchases(history: PurchaseHistory, now: datetime, limit: int) -> list[ItemFields]:
    """The `limit` likeliest re-buys, best first (ties: more orders, more recent, by id);
    scores relative to the first."""
    if not history.product_ids:
        return []
    now_seconds = now.timestamp()
    days = [(now_seconds - last) / SECONDS_PER_DAY for last in history.last_at]
    ranked = None
    if len(days) <= SHORT_HISTORY:
        with suppress(OverflowError):  # numpy's infinite scores then
            ranked = ranked_in_python(history, days)
    order, scores = ranked or ranked_in_numpy(history, days)
    top = scores[order[0]]
    orders, last_at, ids = history.orders, history.last_at, history.product_ids
    return [
        {
            "product_id": ids[n],
            "score": round(scores[n] / top, 4) if top > 0 else 0.0,
            "reason": bought_reason(orders[n], days[n]),
            "slot": "buy-again",
            "orders": orders[n],
            "last_ordered_at": last_at[n],  # epoch seconds: the validation makes it a UTC time
        }
        for n in order[:limit]
    ]


def ranked_in_python(history: PurchaseHistory, days: list[float]) -> tuple[list[int], list[float]]:
    """The entries best first, and their scores (`buy_again_score`, as `ranked_in_numpy`)."""
    params, orders, ids = history.params, history.orders, history.product_ids
    scores = [
        buy_again_score(*entry, params)
        for entry in zip(orders, days, history.repeat_rates, history.interval_days, strict=True)
    ]
    order = sorted(range(len(ids)), key=lambda n: (-scores[n], -orders[n], days[n], ids[n]))
    return order, scores


def ranked_in_numpy(history: PurchaseHistory, days: list[float]) -> tuple[list[int], list[float]]:
    """The entries best first, and their scores (`buy_again_scores`)."""
    orders, ages = np.array(history.orders, dtype=np.float64), np.array(days)
    scores = buy_again_scores(
        orders,
        ages,
        np.array(history.repeat_rates, dtype=np.float64),
        np.array(history.interval_days, dtype=np.float64),
        history.params,
    )
    # lexsort's last key sorts first.
    order = np.lexsort((np.array(history.product_ids), ages, -orders, -scores))
    return order.tolist(), scores.tolist()


class ExplainedBuyAgain(NamedTuple):
    """A buy-again list with the customer's region (None when not read) and the business
    rules applied, for the served-list record."""

    answer: BuyAgainList
    region: str | None
    rules: Applicable


async def buy_again(serving: Serving, user_id: str, limit: int, now: datetime) -> ExplainedBuyAgain:
    """The customer's re-buys, then their discovery list's products (those not already in
    it) up to `limit`, as served: the discovery products' reasons name products by name (the
    re-buys' reasons, `bought twice, last 3 weeks ago`, name none). Unknown customer: what
    discovery says (HTTP 404). The business rules in force for the customer apply; their
    region comes from the cached row the history is read with (one statement, one pool
    round trip), looked up apart only for a customer without one."""
    history, cached = await serving.repository.buy_again_inputs(user_id)
    region, rules = await customer_rules(serving, user_id, cached)
    return ExplainedBuyAgain(
        await _answer(serving, user_id, limit, now, history, cached, rules), region, rules
    )


async def _answer(
    serving: Serving,
    user_id: str,
    limit: int,
    now: datetime,
    history: PurchaseHistory,
    cached: CachedList | None,
    rules: Applicable,
) -> BuyAgainList:
    """`buy_again`'s list, from what it read."""
    if rules.excluded:  # the business rules' filters apply to the customer's own products
        ranked = ranked_purchases(history, now, len(history.product_ids))
        items = [i for i in ranked if i["product_id"] not in rules.excluded][:limit]
    else:
        items = ranked_purchases(history, now, limit)
    if len(items) >= limit:
        count_answer(ENDPOINT, "history")
        return BuyAgainList.model_validate(
            {
                "user_id": user_id,
                "items": items,
                "repurchase_version": history.version,
                "discovery_source": None,
            }
        )
    # Asking for `limit` is enough: at most len(items) of them are already in the list.
    found = await discovery(
        serving, user_id, limit, None, endpoint=ENDPOINT, cached=cached, rules=rules
    )
    slot = DISCOVERY_SLOTS.get(found.source)
    if slot is not None:
        items += await _completion(serving, found.items, items, limit, slot)
    return BuyAgainList.model_validate(
        {
            "user_id": user_id,
            "items": items,
            "repurchase_version": history.version,
            "discovery_source": found.source,
            "model_version": found.model_version,
            "experiment": found.experiment,
            "stale": found.stale,
            "cache_age_seconds": found.cache_age_seconds,
        }
    )


async def _completion(
    serving: Serving,
    discovered: list[RecommendedItem],
    items: list[ItemFields],
    limit: int,
    slot: Slot,
) -> list[ItemFields]:
    """The `discovered` products that complete `items` up to `limit` (those not in it, in
    order), their reasons named: each item built once, named (not built, then copied with
    its names)."""
    listed = {item["product_id"] for item in items}
    added: list[RecommendedItem] = []
    for item in discovered:
        if len(items) + len(added) == limit:
            break
        if item.product_id not in listed:
            listed.add(item.product_id)
            added.append(item)
    named = await serving.names.named_reasons([item.reason for item in added])
    return [
        {
            "product_id": item.product_id,
            "score": item.score,
            "reason": item.reason if found is None else found.text,
            "reason_product_ids": [] if found is None else found.product_ids,
            "slot": slot,
        }
        for item, found in zip(added, named, strict=True)
    ]
