"""Buy again: how likely a customer is to buy a product they bought before, now.

One formula for the `buy-again` recipe (evaluation, retrain) and the api's
`/v1/users/{id}/buy-again` list, so both rank a history alike. What counts, in order:

- how many separate orders contained the product (not the quantity: a household buying 24
  bottles at once is not 24 times as likely to buy them again);
- how long ago the last one was, decayed with a half-life chosen on validation;
- how re-buyable the product is: the share of its buyers who bought it in more than one
  order (coffee is bought again, a television rarely);
- whether it is due: a product's typical repurchase interval (the median gap between two
  orders of it by one customer) against the time since this customer's last purchase
  (bought coffee every 3 weeks, last 3 weeks ago: due; bought it yesterday: not yet).

Rates and intervals are smoothed towards all products' values, so a product with two
buyers does not get an extreme one.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mgrecs.engine.arrays import Float64Array, IntArray

SECONDS_PER_DAY = 86_400.0
PRIOR_PURCHASERS = 5.0
"""Strength of all products' repeat rate as a prior on each product's own."""
PRIOR_GAPS = 5.0
"""Strength of all products' median interval as a prior on each product's own."""
MIN_INTERVAL_DAYS = 1.0
"""Orders of one product by one customer on the same day say nothing about its interval."""
DEFAULT_INTERVAL_DAYS = 30.0
"""The interval assumed when nobody ever bought anything twice."""


@dataclass(frozen=True)
class BuyAgainParams:
    """How the factors combine; `buy_again_scores` says what each one does."""

    half_life_days: float | None = 90.0
    repeat_weight: float = 0.5
    due_weight: float = 0.0
    frequency_power: float = 1.0

    def __post_init__(self) -> None:
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        if not 0.0 <= self.repeat_weight <= 1.0 or not 0.0 <= self.due_weight <= 1.0:
            raise ValueError("repeat_weight and due_weight must be in [0, 1]")
        if self.frequency_power < 0:
            raise ValueError("frequency_power must not be negative")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RepurchaseStats:
    """Per product (indexed like the training catalogue): its repeat rate and interval."""

    repeat_rate: Float64Array
    """Smoothed share of its purchasers who bought it in two or more orders."""
    interval_days: Float64Array
    """Smoothed median days between two consecutive orders of it by one customer."""


def fit_repurchase(
    line_customer: IntArray, line_item: IntArray, line_time: Float64Array, n_items: int
) -> RepurchaseStats:
    """Repeat rates and intervals from order lines (an order is a distinct line time of a
    customer; several lines of one product in one order count once)."""
    if line_customer.size == 0:
        return RepurchaseStats(
            repeat_rate=np.ones(n_items), interval_days=np.full(n_items, DEFAULT_INTERVAL_DAYS)
        )
    key = line_customer * n_items + line_item
    order = np.lexsort((line_time, key))
    key, time = key[order], line_time[order]
    distinct = np.r_[True, (key[1:] != key[:-1]) | (time[1:] != time[:-1])]
    key, time = key[distinct], time[distinct]  # one entry per (customer, product, order)
    same_pair = key[1:] == key[:-1]
    item = key % n_items

    first_of_pair = np.r_[True, ~same_pair]
    orders_per_pair = np.diff(np.r_[np.flatnonzero(first_of_pair), key.size])
    pair_item = item[first_of_pair]
    purchasers = np.bincount(pair_item, minlength=n_items).astype(np.float64)
    repeaters = np.bincount(
        pair_item, weights=(orders_per_pair > 1).astype(np.float64), minlength=n_items
    )
    prior_rate = repeaters.sum() / purchasers.sum()
    repeat_rate = (repeaters + PRIOR_PURCHASERS * prior_rate) / (purchasers + PRIOR_PURCHASERS)

    gaps = np.maximum((time[1:] - time[:-1])[same_pair] / SECONDS_PER_DAY, MIN_INTERVAL_DAYS)
    gap_item = item[1:][same_pair]
    if gaps.size == 0:
        return RepurchaseStats(repeat_rate, np.full(n_items, DEFAULT_INTERVAL_DAYS))
    prior_interval = float(np.median(gaps))
    counts = np.bincount(gap_item, minlength=n_items).astype(np.float64)
    medians = _median_by_group(gap_item, gaps, n_items, prior_interval)
    interval = (counts * medians + PRIOR_GAPS * prior_interval) / (counts + PRIOR_GAPS)
    return RepurchaseStats(repeat_rate, interval)


def buy_again_scores(
    orders: Float64Array,
    days_since: Float64Array,
    repeat_rate: Float64Array,
    interval_days: Float64Array,
    params: BuyAgainParams,
) -> Float64Array:
    """Score of each (customer, product) entry, all arrays aligned; higher is likelier:

    orders ** frequency_power
      x (1 - repeat_weight + repeat_weight x repeat rate)
      x 0.5 ** (days since the last order of it / half-life)
      x (1 - due_weight + due_weight x min(days since / interval, 1))
    """
    days = np.maximum(days_since, 0.0)
    scores = np.power(orders, params.frequency_power)
    scores = scores * (1.0 - params.repeat_weight + params.repeat_weight * repeat_rate)
    if params.half_life_days is not None:
        scores = scores * np.power(0.5, days / params.half_life_days)
    due = np.minimum(days / np.maximum(interval_days, MIN_INTERVAL_DAYS), 1.0)
    result: Float64Array = scores * (1.0 - params.due_weight + params.due_weight * due)
    return result


def buy_again_score(
    orders: float,
    days_since: float,
    repeat_rate: float,
    interval_days: float,
    params: BuyAgainParams,
) -> float:
    """`buy_again_scores` of one entry in plain floats, the same operations in the same order:
    a customer's few products score faster so than through numpy, whose per-call overhead
    dominates short arrays. The same result but for the last bit: numpy's vectorised power
    (AVX-512 machines) and the C library's differ by one unit in the last place in about one
    call of 20. Raises OverflowError where numpy's `orders ** frequency_power` would be
    infinite."""
    days = max(days_since, 0.0)
    score: float = orders**params.frequency_power
    score = score * (1.0 - params.repeat_weight + params.repeat_weight * repeat_rate)
    if params.half_life_days is not None:
        score = score * 0.5 ** (days / params.half_life_days)
    due = min(days / max(interval_days, MIN_INTERVAL_DAYS), 1.0)
    return score * (1.0 - params.due_weight + params.due_weight * due)


_TIMES = {1: "once", 2: "twice"}


def bought_reason(orders: int, days_since: float) -> str:
    """'bought 5 times, last 3 weeks ago', 'bought once, yesterday'."""
    times = _TIMES.get(orders) or f"{orders} times"
    last = "last " if orders > 1 else ""
    return f"bought {times}, {last}{_ago(days_since)}"


def _ago(days: float) -> str:
    whole = int(max(days, 0.0))
    for limit, unit, size in ((14, "day", 1), (63, "week", 7), (730, "month", 30)):
        if whole < limit:
            count = whole // size
            if unit == "day" and count == 0:
                return "today"
            if unit == "day" and count == 1:
                return "yesterday"
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    years = whole // 365
    return f"{years} year{'s' if years != 1 else ''} ago"


def _median_by_group(
    group: IntArray, values: Float64Array, n_groups: int, default: float
) -> Float64Array:
    """Median of `values` per group (the lower middle of an even count); `default` for a
    group with no value."""
    order = np.lexsort((values, group))
    group, values = group[order], values[order]
    counts = np.bincount(group, minlength=n_groups)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    medians = np.full(n_groups, default)
    has = counts > 0
    medians[has] = values[starts[has] + (counts[has] - 1) // 2]
    return medians
