"""New products reach customers before a retrain knows them: the "new in your categories"
slot of a customer's list and the new products among a product's similar items.

A product launched since the last retrain is not a column of the model, so no recipe can
score it. Instead a share of each list's slots (`new_items_share`, placed as the promoted
slots are: `rules.promotion_slots`) goes to new products chosen by what is known of them:
for a customer, the categories of their purchases (most bought category first, then the
product with the most buyers since launch, then the newest); for a product, the new
products first bought together with it, then those of its category sharing the most of its
attributes (brand, size...). Pure: the callers read the candidates (`mgrecs.store.products`)
and the evaluation's cold-start report measures the same choice offline.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from mgrecs.engine.records import Scored
from mgrecs.engine.slots import place_at_share, slot_count

DEFAULT_NEW_ITEMS_SHARE = 0.1
"""The share of a list's slots for new products when nothing else is said: one in ten."""


def new_reason(category: str) -> str:
    """The reason of a new product placed for its category: `new in <category>`."""
    return f"new in {category}"


def bought_with_reason(product_id: str) -> str:
    """The reason of a new product placed for its first co-purchases with `product_id`."""
    return f"new, bought together with {product_id}"


@dataclass(frozen=True)
class NewProduct:
    """A product launched since the last retrain, and what is known of it so far."""

    product_id: str
    category: str | None
    launched_at: float
    """Epoch seconds."""
    buyers: int = 0
    """Distinct customers who bought it since its launch."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Free attributes (brand, size...), as the catalogue gives them."""
    bought_with: int = 0
    """Orders holding both it and the product whose similar items are asked (0 otherwise)."""


def category_weights(categories: Iterable[str | None]) -> Counter[str]:
    """How often each category occurs among a customer's purchases (one entry per product
    or per line, as the caller counts); unknown categories are left out."""
    return Counter(c for c in categories if c)


def new_for_customer(
    candidates: Sequence[NewProduct],
    weights: Mapping[str, int],
    excluded: Set[str],
    count: int,
) -> list[Scored]:
    """Up to `count` of `candidates` in the customer's categories (`weights` > 0), not in
    `excluded` (bought, or listed already): the most bought category first, then the most
    buyers since launch, the newest, the lowest id. Score 0: `place_new` gives the slot's."""
    if count <= 0:
        return []
    chosen = [
        c
        for c in dict((c.product_id, c) for c in candidates).values()
        if c.category and weights.get(c.category, 0) > 0 and c.product_id not in excluded
    ]
    chosen.sort(key=lambda c: (-weights[c.category or ""], -c.buyers, -c.launched_at, c.product_id))
    return [Scored(c.product_id, 0.0, new_reason(c.category or "")) for c in chosen[:count]]


def attribute_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    """How many attributes two products share (same name, same value)."""
    return sum(1 for key, value in a.items() if key in b and b[key] == value)


def new_like(
    product_id: str,
    category: str | None,
    attributes: Mapping[str, Any],
    candidates: Sequence[NewProduct],
    excluded: Set[str],
    count: int,
) -> list[Scored]:
    """Up to `count` new products similar to `product_id` (of `category`, with
    `attributes`), never itself nor `excluded`: those bought together with it (most orders
    first), then those of its category (most shared attributes first); then the most buyers,
    the newest, the lowest id. Score 0: `place_new` gives the slot's."""
    if count <= 0:
        return []
    kept = [
        c
        for c in dict((c.product_id, c) for c in candidates).values()
        if c.product_id != product_id
        and c.product_id not in excluded
        and (c.bought_with > 0 or (category is not None and c.category == category))
    ]
    kept.sort(
        key=lambda c: (
            -c.bought_with,
            -attribute_overlap(attributes, c.attributes),
            -c.buyers,
            -c.launched_at,
            c.product_id,
        )
    )
    return [
        Scored(
            c.product_id,
            0.0,
            bought_with_reason(product_id) if c.bought_with > 0 else new_reason(c.category or ""),
        )
        for c in kept[:count]
    ]


def new_slot_count(k: int, share: float, available: int) -> int:
    """How many of a top-k list's slots new products take (see `rules.promotion_slots`)."""
    return slot_count(k, share, available)


def place_new(
    organic: Sequence[Scored], new: Sequence[Scored], k: int, share: float
) -> list[Scored]:
    """`organic` (best first) cut to `k` with the first of `new` at their slots, as the
    promoted slots are placed (`slots.place_at_share`): the list stays sorted by score,
    organic items keep their order and reasons, new ones keep theirs."""
    return place_at_share(organic, new, k, share)
