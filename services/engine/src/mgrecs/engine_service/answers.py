"""The answers to the three runtime questions, from the served model plus real-time events.

Before any model is trained the engine still answers: from what PutEvents brought in
(items many users had events for), or with an empty list, never with an error.
"""

from mgrecs.engine.model import HIT_FLOOR, Scored
from mgrecs.engine_service.events import EventStore
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


def for_user(
    served: ServedModel | None,
    events: EventStore,
    user_id: str,
    context: dict[str, str] | None,
    k: int,
) -> list[Scored]:
    """Trained history plus events since: a purchase changes the next answer at once."""
    own = events.items(user_id)
    if served is None:
        mine = set(own)
        popular = _event_popularity(events)
        return [
            Scored(item, score, "popular") for item, score in popular.items() if item not in mine
        ][:k]
    history = served.model.history(user_id) + own
    return served.model.recommend(history, _region(served, events, user_id, context), k)


def similar(served: ServedModel | None, item_id: str, k: int) -> list[Scored]:
    return served.model.similar_items(item_id, k) if served else []


def ranking(
    served: ServedModel | None,
    events: EventStore,
    user_id: str,
    context: dict[str, str] | None,
    item_ids: list[str],
) -> list[Scored]:
    """Every input item, best first; items nothing is known about go last, in input order."""
    if served is None:
        popular = _event_popularity(events)
        known = [Scored(i, popular[i], "popular") for i in item_ids if i in popular]
        known.sort(key=lambda s: -s.score)
        return known + [Scored(i, 0.0, "unknown item") for i in item_ids if i not in popular]
    history = served.model.history(user_id) + events.items(user_id)
    region = _region(served, events, user_id, context)
    return served.model.rank(history, region, item_ids)
