"""Popularity: how many distinct customers bought each product, globally and per region,
and which products are trending (rising in the last days, see `trending`) there.

Each purchaser counts once per product, weighted by how recent their latest purchase of it
is (half-life decay), because recent popularity is the better cold-start answer for retail;
trending products are what a count over weeks is slow to show.
"""

from dataclasses import dataclass, field

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.dataset import NO_REGION, Dataset
from mgrecs.engine.trending import fit_trends

SECONDS_PER_DAY = 86_400.0
REGIONAL_BAND = 0.5
"""`scores` puts items bought in the region in (0.5, 1] and the rest, by global count, in
[0, 0.5]: regional popularity first, global popularity only fills up behind it."""


@dataclass(frozen=True)
class Popularity:
    """Recency-weighted distinct-purchaser counts and trend strengths, and the rankings
    derived from them."""

    global_counts: Float64Array
    """(n_items,)"""
    regional_counts: Float64Array
    """(n_regions, n_items)"""
    global_trend: Float64Array
    """(n_items,) the rise ratio of products trending over all regions, 0 for the rest."""
    regional_trend: Float64Array
    """(n_regions, n_items) the same over each region's own order lines."""
    _bought_in: dict[int, BoolArray] = field(default_factory=dict, compare=False)
    _scores: dict[int, Float64Array] = field(default_factory=dict, compare=False)
    _orders: dict[int, IntArray] = field(default_factory=dict, compare=False)
    _trending: dict[int, IntArray] = field(default_factory=dict, compare=False)

    def in_region(self, region: int) -> BoolArray:
        """Which items were bought in `region` (all False for NO_REGION), cached."""
        if region not in self._bought_in:
            self._bought_in[region] = (
                np.zeros(self.global_counts.shape[0], dtype=bool)
                if region == NO_REGION
                else self.regional_counts[region] > 0
            )
        return self._bought_in[region]

    def scores(self, region: int) -> Float64Array:
        """Popularity in 0..1 as seen from `region` (NO_REGION: global only), cached."""
        if region not in self._scores:
            self._scores[region] = self._compute_scores(region)
        return self._scores[region]

    def _compute_scores(self, region: int) -> Float64Array:
        top = self.global_counts.max(initial=0.0)
        global_part = self.global_counts / top if top > 0 else np.zeros_like(self.global_counts)
        if region == NO_REGION:
            return global_part
        regional = self.regional_counts[region]
        bought_here = regional > 0
        regional_part = REGIONAL_BAND + REGIONAL_BAND * regional / regional.max(initial=1.0)
        return np.where(bought_here, regional_part, REGIONAL_BAND * global_part)

    def order(self, region: int) -> IntArray:
        """All item indices, most popular first as seen from `region` (ties by index)."""
        if region not in self._orders:
            scores = self.scores(region)
            self._orders[region] = np.lexsort((np.arange(scores.shape[0]), -scores))
        return self._orders[region]

    def trending_order(self, region: int) -> IntArray:
        """The items trending in `region`, strongest rise first, then the other items
        trending globally, strongest first (ties by index); NO_REGION: global only. Cached."""
        if region not in self._trending:
            local = (
                np.zeros_like(self.global_trend)
                if region == NO_REGION
                else self.regional_trend[region]
            )
            self._trending[region] = np.concatenate(
                [_strongest(local), _strongest(np.where(local > 0, 0.0, self.global_trend))]
            )
        return self._trending[region]

    def is_trending_in(self, region: int, item: int) -> bool:
        """Whether `item` is trending in `region` itself (never for NO_REGION)."""
        return region != NO_REGION and bool(self.regional_trend[region, item] > 0)


def _strongest(strength: Float64Array) -> IntArray:
    """Indices of the positive entries, largest first, ties by index."""
    positive = np.flatnonzero(strength > 0)
    ranked: IntArray = positive[np.lexsort((positive, -strength[positive]))]
    return ranked


def fit_popularity(dataset: Dataset, half_life_days: float) -> Popularity:
    """Count each customer once per product (and region), decayed from the newest line;
    trends with the defaults of `trending`."""
    n_items, n_regions = len(dataset.item_ids), len(dataset.regions)
    global_counts = np.zeros(n_items, dtype=np.float64)
    regional_counts = np.zeros((n_regions, n_items), dtype=np.float64)
    global_trend, regional_trend = fit_trends(dataset)
    if dataset.line_time.size == 0:
        return Popularity(global_counts, regional_counts, global_trend, regional_trend)
    now = dataset.line_time.max()
    n_customers = len(dataset.customer_ids)

    def latest(
        keys: IntArray,
    ) -> tuple[IntArray, Float64Array]:
        """Distinct keys and the latest line time of each."""
        uniques, inverse = np.unique(keys, return_inverse=True)
        times = np.full(uniques.shape[0], -np.inf)
        np.maximum.at(times, inverse, dataset.line_time)
        return uniques, times

    def decay(times: Float64Array) -> Float64Array:
        weights: Float64Array = np.power(0.5, (now - times) / (half_life_days * SECONDS_PER_DAY))
        return weights

    pairs, pair_times = latest(dataset.line_customer * n_items + dataset.line_item)
    np.add.at(global_counts, pairs % n_items, decay(pair_times))

    has_region = dataset.line_region != NO_REGION
    keys = (dataset.line_region * n_customers + dataset.line_customer) * n_items + dataset.line_item
    triples, triple_times = latest(np.where(has_region, keys, -1))
    kept = triples >= 0
    triples, triple_times = triples[kept], triple_times[kept]
    np.add.at(
        regional_counts,
        (triples // (n_customers * n_items), triples % n_items),
        decay(triple_times),
    )
    return Popularity(global_counts, regional_counts, global_trend, regional_trend)
