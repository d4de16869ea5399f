"""Items placed at a share of a list's slots, the way promoted products are
(`rules.promotion_slots`): the new products of a customer's list, the trending products of
a visitor's. The organic items keep their order and reasons around them."""

from collections.abc import Sequence

from mgrecs.engine.records import Scored
from mgrecs.engine.rules import promotion_slots


def slot_count(k: int, share: float, available: int) -> int:
    """How many of a top-k list's slots `available` placed items take at `share`."""
    return len(promotion_slots(k, share, available))


def place_at_share(
    organic: Sequence[Scored], placed: Sequence[Scored], k: int, share: float
) -> list[Scored]:
    """`organic` (best first) cut to `k` with the first of `placed` at their slots
    (`rules.promotion_slots`); an organic item that is also placed moves to its slot. A
    placed item takes the score of the organic item it displaces (the one before it when
    none follows), so the list stays sorted by score; every item keeps its reason."""
    slots = set(promotion_slots(k, share, len(placed)))
    chosen = list(placed[: len(slots)])
    taken = {s.item_id for s in chosen}
    rest = [s for s in organic if s.item_id not in taken]
    result: list[Scored] = []
    while len(result) < k and (rest or chosen):
        if chosen and (len(result) in slots or not rest):
            score = rest[0].score if rest else (result[-1].score if result else 0.0)
            item = chosen.pop(0)
            result.append(Scored(item.item_id, score, item.reason))
        else:
            result.append(rest.pop(0))
    return result
