"""Business rules on top of the ranking: filters (inactive products never, optional
categories, price range and any further condition such as a filter expression's) as one
vectorised mask over the catalogue, and promoted products placed at a configured share of
the slots.

Placement: a top-k list with share s gets n = round(k s) promoted slots (at least one when
s > 0 and a promoted product is eligible, never more than eligible ones), evenly spaced at
the ends of k/n-long stretches: with k = 10, s = 0.2 at positions 5 and 10 (1-based). The
organic items keep their order around them. A promoted item takes the score of the organic
item it displaces (the one that moves down a slot; the one before it when none follows), so
the list stays sorted by score and a promoted slot never claims more than it pushes aside.
"""

import math
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass

import numpy as np

from mgrecs.engine.arrays import BoolArray
from mgrecs.engine.catalog import Catalog
from mgrecs.engine.records import Scored

PROMOTED_REASON = "promoted"

ProductCondition = Callable[[Catalog], BoolArray]
"""Per catalogue product: does it meet the condition (e.g. `filters.BoundFilter.mask`)?"""


@dataclass(frozen=True)
class Rules:
    """What a request may ask on top of the ranking; the defaults ask for nothing."""

    categories: Set[str] | None = None
    """Only products of these categories (None: any; products without one never match)."""
    min_price: float | None = None
    max_price: float | None = None
    """Inclusive price range (None: open); products without a price never match a bound."""
    promoted: Sequence[str] = ()
    """Promoted product ids, most wanted first."""
    promoted_share: float = 0.0
    where: ProductCondition | None = None
    """Any further condition on the products (None: none)."""


NO_RULES = Rules()
"""The rules of a request that asks for nothing more than the ranking."""


def allowed_products(catalog: Catalog, rules: Rules) -> BoolArray:
    """Per catalogue product: may it be recommended under `rules`? Inactive ones never."""
    allowed = catalog.active.copy()
    if rules.categories is not None:
        wanted = [
            catalog.category_index[c] for c in rules.categories if c in catalog.category_index
        ]
        allowed &= np.isin(catalog.category, np.asarray(wanted, dtype=np.int64))
    # NaN (unknown) prices compare False, so they fail any bound.
    if rules.min_price is not None:
        allowed &= catalog.price >= rules.min_price
    if rules.max_price is not None:
        allowed &= catalog.price <= rules.max_price
    if rules.where is not None:
        allowed &= rules.where(catalog)
    return allowed


def eligible_promoted(
    catalog: Catalog, rules: Rules, allowed: BoolArray, excluded: Sequence[int]
) -> list[str]:
    """Promoted ids the catalogue knows and `allowed` (the rules' mask) lets through,
    without `excluded` catalogue indices (the customer's purchases, the product itself),
    each once."""
    if rules.promoted_share <= 0:
        return []
    index = catalog.index
    out = set(excluded)
    return list(
        dict.fromkeys(
            p for p in rules.promoted if p in index and allowed[index[p]] and index[p] not in out
        )
    )


def promotion_slots(k: int, share: float, available: int) -> list[int]:
    """0-based positions of the promoted products in a top-k list (see the module doc)."""
    if k <= 0 or share <= 0 or available <= 0:
        return []
    count = min(available, k, max(1, math.floor(k * share + 0.5)))
    step = k / count
    return [int(step * (n + 1)) - 1 for n in range(count)]


def insert_promoted(
    organic: list[Scored], promoted: Sequence[str], k: int, share: float
) -> list[Scored]:
    """`organic` (best first, at most k) with eligible `promoted` ids (most wanted first)
    at their slots; an organic item that is promoted moves to its promoted slot."""
    slots = set(promotion_slots(k, share, len(promoted)))
    chosen = list(promoted[: len(slots)])
    taken = set(chosen)
    rest = [s for s in organic if s.item_id not in taken]
    result: list[Scored] = []
    while len(result) < k and (rest or chosen):
        if chosen and (len(result) in slots or not rest):
            score = rest[0].score if rest else (result[-1].score if result else 0.0)
            result.append(Scored(chosen.pop(0), score, PROMOTED_REASON))
        else:
            result.append(rest.pop(0))
    return result
