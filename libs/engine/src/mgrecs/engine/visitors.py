"""A visitor's list (no customer id, so no history): what sells in their region, with the
products trending there at a share of the slots.

The organic order is the region's popularity (distinct buyers over the active period, most
first, then id); the trending products (`trending`: the same rise formula and thresholds as
the model's "trending" reasons) take `trending_share` of the slots, strongest rise first,
placed as promoted slots are (`slots.place_at_share`). Pure: the api counts the buyers.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mgrecs.engine.records import Scored
from mgrecs.engine.slots import place_at_share
from mgrecs.engine.trending import MIN_RECENT_PURCHASERS, rise_of_counts, trend_strength


@dataclass(frozen=True)
class ProductActivity:
    """A product's distinct buyers in a region (or everywhere)."""

    product_id: str
    buyers: int
    """Over the active period (`active_days`)."""
    recent: int
    """In the trending window (`trending.WINDOW_DAYS`)."""
    baseline: int
    """In the baseline period before the window (`trending.BASELINE_DAYS`)."""


def popular_reason(region: str | None) -> str:
    return "popular" if region is None else f"popular in {region}"


def trending_reason(region: str | None) -> str:
    return "trending" if region is None else f"trending in {region}"


def visitor_list(
    activity: Sequence[ProductActivity],
    has_past: bool,
    k: int,
    trending_share: float,
    region: str | None,
) -> list[Scored]:
    """The top `k` for a visitor of `region` (None: everywhere): the most bought products
    (score: buyers relative to the top one), with trending ones (`has_past`: any purchase
    fell in the baseline period, without which nothing can be said to rise) at
    `trending_share` of the slots. Each product once (the first of its entries)."""
    if k <= 0:
        return []
    first: dict[str, ProductActivity] = {}
    for a in activity:
        first.setdefault(a.product_id, a)
    products = list(first.values())
    bought = [a for a in products if a.buyers > 0]
    bought.sort(key=lambda a: (-a.buyers, a.product_id))
    top = bought[0].buyers if bought else 0
    organic = [
        Scored(a.product_id, round(a.buyers / top, 4), popular_reason(region)) for a in bought
    ]
    if not products or trending_share <= 0:
        return organic[:k]
    rise = rise_of_counts(
        np.array([a.recent for a in products], dtype=np.float64),
        np.array([a.baseline for a in products], dtype=np.float64),
        has_past,
    )
    strength = trend_strength(rise, min_recent=MIN_RECENT_PURCHASERS)
    rising = sorted(
        (n for n in range(len(products)) if strength[n] > 0),
        key=lambda n: (-strength[n], products[n].product_id),
    )
    trending = [Scored(products[n].product_id, 0.0, trending_reason(region)) for n in rising]
    return place_at_share(organic, trending, k, trending_share)
