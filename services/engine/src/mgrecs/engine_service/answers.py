"""The answers to the three runtime questions, from the served model plus real-time events,
under the request's filter and promotion (`filtering.Asked`).

Before any model is trained the engine still answers: from what PutEvents brought in
(items many users had events for), or with an empty list, never with an error. Nothing is
known then about the products themselves, so a filter treats each as having no category and
no price.

A known customer is scored with their stored order history when the model keeps it (a
repeat recipe): the products of events since training each count as one more order at the
request time (`RecommenderModel.recommend`'s `customer_id`, `now`).
"""

import time
from collections.abc import Sequence

from mgrecs.engine.arrays import BoolArray
from mgrecs.engine.bands import HIT_FLOOR
from mgrecs.engine.catalog import Catalog
from mgrecs.engine.filters import BoundFilter
from mgrecs.engine.promotion import promoted_products
from mgrecs.engine.records import Scored
from mgrecs.engine.rules import ProductCondition, Rules
from mgrecs.engine_service.events import EventStore
from mgrecs.engine_service.filtering import Asked
from mgrecs.engine_service.registry import ServedModel


def _region(
    served: ServedModel | None, events: EventStore, user_id: str, context: dict[str, str] | None
) -> str | None:
    """The request's context wins, then the region events reported, then the trained one."""
    if context and context.get("region"):
        return context["region"]
    if region := events.region(user_id):
        return region
    return served.model.region_of(user_id) if served else None


def _event_popularity(events: EventStore) -> dict[str, float]:
    """Scores in the popularity band from events alone (used before a model exists)."""
    ranked = events.popular()
    top = ranked[0][1] if ranked else 1
    return {item: HIT_FLOOR * users / top for item, users in ranked}


def _history(served: ServedModel | None, events: EventStore, user_id: str | None) -> list[str]:
    """What the user bought: in the training data, then through PutEvents since."""
    if user_id is None:
        return []
    return (served.model.history(user_id) if served else []) + events.items(user_id)


def _condition(bound: BoundFilter | None, excluded: Sequence[str]) -> ProductCondition | None:
    """The filter's product mask, without the `excluded` product ids."""
    if bound is None and not excluded:
        return None

    def where(catalog: Catalog) -> BoolArray:
        # Without a filter, start from `active`: the rules require it anyway.
        allowed = bound.mask(catalog) if bound else catalog.active.copy()
        allowed[[catalog.index[p] for p in excluded if p in catalog.index]] = False
        return allowed

    return where


def _promoted(
    served: ServedModel,
    asked: Asked,
    region: str | None,
    excluded: Sequence[str],
    k: int,
) -> tuple[list[str], float]:
    """The promoted products (passing the promotion's and the request's filters, most
    popular first) and their share of the slots."""
    if asked.promotion is None:
        return [], 0.0
    catalog = served.model.catalog
    allowed = asked.promotion.filter.mask(catalog)
    if asked.filter is not None:
        allowed &= asked.filter.mask(catalog)
    order = served.popularity_order(region)
    products = promoted_products(served.model, order, allowed, excluded, k)
    return products, asked.promotion.share


def for_user(
    served: ServedModel | None,
    events: EventStore,
    user_id: str,
    context: dict[str, str] | None,
    k: int,
    asked: Asked,
    exclude_purchased: bool,
) -> list[Scored]:
    """Trained history plus events since: a purchase changes the next answer at once.
    `exclude_purchased`: the engine's default, for a request without a filter."""
    exclude = asked.exclude_purchased(exclude_purchased)
    if served is None:
        if asked.filter is not None and not asked.filter.allows_unknown():
            return []
        mine = set(events.items(user_id)) if exclude else set()
        popular = _event_popularity(events)
        return [
            Scored(item, score, "popular") for item, score in popular.items() if item not in mine
        ][:k]
    history = _history(served, events, user_id)
    region = _region(served, events, user_id, context)
    promoted, share = _promoted(served, asked, region, history, k)
    return served.model.recommend(
        history,
        region,
        k,
        exclude,
        rules=Rules(where=_condition(asked.filter, ()), promoted=promoted, promoted_share=share),
        customer_id=user_id,
        now=time.time(),
    )


def similar(
    served: ServedModel | None,
    events: EventStore,
    item_id: str,
    user_id: str | None,
    k: int,
    asked: Asked,
) -> list[Scored]:
    """Products like `item_id`; a filter excluding purchases leaves out what `user_id` (when
    the request names one) bought."""
    if served is None:
        return []
    bought = _history(served, events, user_id)
    excluded = bought if asked.filter is not None and asked.filter.excludes_purchases else []
    promoted, share = _promoted(served, asked, None, [item_id, *bought], k)
    return served.model.similar_items(
        item_id,
        k,
        rules=Rules(
            where=_condition(asked.filter, excluded), promoted=promoted, promoted_share=share
        ),
    )


def _filtered(
    served: ServedModel | None, asked: Asked, history: list[str], item_ids: list[str]
) -> list[str]:
    """The input items the request's filter lets through (AWS drops the others)."""
    bound = asked.filter
    if bound is None:
        return item_ids
    bought = set(history) if bound.excludes_purchases else set()
    unknown = bound.allows_unknown()
    catalog = served.model.catalog if served else None
    mask = bound.mask(catalog) if catalog else None
    kept = []
    for item in item_ids:
        index = catalog.index.get(item) if catalog else None
        passes = unknown if index is None or mask is None else bool(mask[index])
        if passes and item not in bought:
            kept.append(item)
    return kept


def ranking(
    served: ServedModel | None,
    events: EventStore,
    user_id: str,
    context: dict[str, str] | None,
    item_ids: list[str],
    asked: Asked,
) -> list[Scored]:
    """Every input item the filter lets through, best first; items nothing is known about
    go last, in input order."""
    history = _history(served, events, user_id)
    item_ids = _filtered(served, asked, history, item_ids)
    if not item_ids:
        return []
    if served is None:
        popular = _event_popularity(events)
        known = [Scored(i, popular[i], "popular") for i in item_ids if i in popular]
        known.sort(key=lambda s: -s.score)
        return known + [Scored(i, 0.0, "unknown item") for i in item_ids if i not in popular]
    region = _region(served, events, user_id, context)
    return served.model.rank(history, region, item_ids, customer_id=user_id, now=time.time())
