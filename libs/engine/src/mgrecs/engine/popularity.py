"""Popularity: how many distinct customers bought each product, globally and per region.

Each purchaser counts once per product, weighted by how recent their latest purchase of it
is (half-life decay), because recent popularity is the better cold-start answer for retail.
"""

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mgrecs.engine.dataset import NO_REGION, Dataset

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SECONDS_PER_DAY = 86_400.0
REGIONAL_BAND = 0.5
"""`scores` puts items bought in the region in (0.5, 1] and the rest, by global count, in
[0, 0.5]: regional popularity first, global popularity only fills up behind it."""


@dataclass(frozen=True)
class Popularity:
    """Recency-weighted distinct-purchaser counts, and the rankings derived from them."""

    global_counts: npt.NDArray[np.float64]
    """(n_items,)"""
    regional_counts: npt.NDArray[np.float64]
    """(n_regions, n_items)"""
    _bought_in: dict[int, npt.NDArray[np.bool_]] = field(default_factory=dict, compare=False)
    _scores: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict, compare=False)
    _orders: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict, compare=False)

    def in_region(self, region: int) -> npt.NDArray[np.bool_]:
        """Which items were bought in `region` (all False for NO_REGION), cached."""
        if region not in self._bought_in:
            self._bought_in[region] = (
                np.zeros(self.global_counts.shape[0], dtype=bool)
                if region == NO_REGION
                else self.regional_counts[region] > 0
            )
        return self._bought_in[region]

    def scores(self, region: int) -> npt.NDArray[np.float64]:
        """Popularity in 0..1 as seen from `region` (NO_REGION: global only), cached."""
        if region not in self._scores:
            self._scores[region] = self._compute_scores(region)
        return self._scores[region]

    def _compute_scores(self, region: int) -> npt.NDArray[np.float64]:
        top = self.global_counts.max(initial=0.0)
        global_part = self.global_counts / top if top > 0 else np.zeros_like(self.global_counts)
        if region == NO_REGION:
            return global_part
        regional = self.regional_counts[region]
        bought_here = regional > 0
        regional_part = REGIONAL_BAND + REGIONAL_BAND * regional / regional.max(initial=1.0)
        return np.where(bought_here, regional_part, REGIONAL_BAND * global_part)

    def order(self, region: int) -> npt.NDArray[np.int64]:
        """All item indices, most popular first as seen from `region` (ties by index)."""
        if region not in self._orders:
            scores = self.scores(region)
            self._orders[region] = np.lexsort((np.arange(scores.shape[0]), -scores))
        return self._orders[region]


def fit_popularity(dataset: Dataset, half_life_days: float) -> Popularity:
    """Count each customer once per product (and region), decayed from the newest line."""
    n_items, n_regions = len(dataset.item_ids), len(dataset.regions)
    global_counts = np.zeros(n_items, dtype=np.float64)
    regional_counts = np.zeros((n_regions, n_items), dtype=np.float64)
    if dataset.line_time.size == 0:
        return Popularity(global_counts, regional_counts)
    now = dataset.line_time.max()
    n_customers = len(dataset.customer_ids)

    def latest(
        keys: npt.NDArray[np.int64],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Distinct keys and the latest line time of each."""
        uniques, inverse = np.unique(keys, return_inverse=True)
        times = np.full(uniques.shape[0], -np.inf)
        np.maximum.at(times, inverse, dataset.line_time)
        return uniques, times

    def decay(times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        weights: npt.NDArray[np.float64] = np.power(
            0.5, (now - times) / (half_life_days * SECONDS_PER_DAY)
        )
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
    return Popularity(global_counts, regional_counts)
