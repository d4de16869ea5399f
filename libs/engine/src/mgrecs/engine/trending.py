"""Trending: how much each product's purchases rose in the last days against its own past.

The one place of the formula: the `trending` recipe ranks products by it (an evaluation
baseline), and the model marks products as trending with it, globally and per region, for
the cold-start fill and its "trending" reasons.
"""

from dataclasses import dataclass

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.dataset import Dataset

SECONDS_PER_DAY = 86_400.0
WINDOW_DAYS = 7.0
"""The recent period: purchases in the last week against the weeks before."""
BASELINE_DAYS = 28.0
"""The past the recent period is compared with, just before the window."""
SMOOTHING = 3.0
"""Added to recent and expected purchasers alike, so a rarely sold product needs several
new purchasers, not one, to move its ratio far from 1."""
TREND_RATIO = 2.0
"""A product is trending when its smoothed ratio is at least this: twice the purchasers its
own past predicts, well clear of the noise around 1 (steady)."""
MIN_RECENT_PURCHASERS = 3
"""... and when at least this many distinct customers bought it in the window, whatever the
smoothing: one sale is not a trend."""


@dataclass(frozen=True)
class Rise:
    """Per product: the smoothed rise ratio (1 steady, above 1 rising) and its inputs."""

    ratio: Float64Array
    recent: Float64Array
    """Distinct purchasers in the window."""
    has_past: bool
    """Whether any order line fell in the baseline period: without a past, nothing can be
    said to rise (data younger than the window would make every product "trending")."""


def measure_rise(
    customer: IntArray,
    item: IntArray,
    time: Float64Array,
    n_items: int,
    now: float,
    *,
    window_days: float = WINDOW_DAYS,
    baseline_days: float = BASELINE_DAYS,
    smoothing: float = SMOOTHING,
) -> Rise:
    """ratio = (recent + smoothing) / (expected + smoothing): `recent` distinct purchasers
    in the last `window_days` before `now`, `expected` the same-length share of the
    distinct purchasers in the `baseline_days` before that."""
    window_start = now - window_days * SECONDS_PER_DAY
    baseline_start = window_start - baseline_days * SECONDS_PER_DAY
    recent = _purchasers(customer, item, time >= window_start, n_items)
    in_baseline = (time >= baseline_start) & (time < window_start)
    baseline = _purchasers(customer, item, in_baseline, n_items)
    return rise_of_counts(
        recent,
        baseline,
        bool(in_baseline.any()),
        window_days=window_days,
        baseline_days=baseline_days,
        smoothing=smoothing,
    )


def rise_of_counts(
    recent: Float64Array,
    baseline: Float64Array,
    has_past: bool,
    *,
    window_days: float = WINDOW_DAYS,
    baseline_days: float = BASELINE_DAYS,
    smoothing: float = SMOOTHING,
) -> Rise:
    """The `Rise` of products with `recent` distinct purchasers in the window and `baseline`
    in the period before it (counted elsewhere, e.g. by the database for the api)."""
    expected = baseline * (window_days / baseline_days)
    ratio = (recent + smoothing) / (expected + smoothing)
    return Rise(ratio=ratio, recent=recent, has_past=has_past)


def trend_strength(
    rise: Rise,
    *,
    threshold: float = TREND_RATIO,
    min_recent: float = MIN_RECENT_PURCHASERS,
) -> Float64Array:
    """The ratio of each trending product (ratio >= `threshold`, at least `min_recent`
    recent purchasers, a past to compare with), 0 for every other product."""
    if not rise.has_past:
        return np.zeros_like(rise.ratio)
    trending = (rise.ratio >= threshold) & (rise.recent >= min_recent)
    strength: Float64Array = np.where(trending, rise.ratio, 0.0)
    return strength


def fit_trends(dataset: Dataset) -> tuple[Float64Array, Float64Array]:
    """Trend strengths (see `trend_strength`) over all order lines (n_items,) and over each
    region's own lines (n_regions, n_items), measured at the newest line. A product rising
    in one region only is trending there, not in the others."""
    n_items, n_regions = len(dataset.item_ids), len(dataset.regions)
    regional = np.zeros((n_regions, n_items), dtype=np.float64)
    if dataset.line_time.size == 0:
        return np.zeros(n_items, dtype=np.float64), regional
    now = float(dataset.line_time.max())

    def strength(lines: BoolArray | slice) -> Float64Array:
        rise = measure_rise(
            dataset.line_customer[lines],
            dataset.line_item[lines],
            dataset.line_time[lines],
            n_items,
            now,
        )
        return trend_strength(rise)

    overall = strength(slice(None))
    for region in range(n_regions):
        regional[region] = strength(dataset.line_region == region)
    return overall, regional


def _purchasers(
    customer: IntArray, item: IntArray, inside: BoolArray, n_items: int
) -> Float64Array:
    """Distinct customers per product among the lines marked `inside`."""
    pairs = np.unique(customer[inside] * n_items + item[inside])
    counts: Float64Array = np.bincount(pairs % n_items, minlength=n_items).astype(np.float64)
    return counts
