"""The arithmetic of the region page: sampling windows, match rates, their confidence
intervals, affinity buckets."""

import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from mgrecs.api.repository import ProductCount
from mgrecs.api.schemas import Affinity, RegionItem

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
"""The standard normal quantile of a two-sided 95 % interval (1.959964...)."""


def window_index(now: datetime, window_hours: int) -> int:
    """Which fixed window `now` falls in: floor(epoch seconds / window length)."""
    return int(now.timestamp() // (window_hours * 3600))


def window_start(index: int, window_hours: int) -> datetime:
    return datetime.fromtimestamp(index * window_hours * 3600, tz=UTC)


def active_since(now: datetime, active_days: int) -> datetime:
    """Customers with an order at or after this instant count as active."""
    return now - timedelta(days=active_days)


def affinity(match_rate: float) -> Affinity:
    if match_rate >= 80:
        return "High"
    if match_rate >= 40:
        return "Medium"
    return "Low"


def wilson_interval(successes: int, trials: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion (E. B. Wilson, "Probable inference, the law
    of succession, and statistical inference", JASA 22, 1927), as fractions. Unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0 or n successes, which
    matters for the region page's small samples. Written out rather than taken from SciPy:
    it is evaluated for every item of every request, and `binomtest(...).proportion_ci`
    (the same interval; the tests check them against each other) also computes a p-value."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def region_item(product: ProductCount, customers: int) -> RegionItem:
    """One product's line on the region page, from its count among `customers` (the sample,
    or every active customer of the region)."""
    match_rate = round(product.count / customers * 100, 1)
    low, high = wilson_interval(product.count, customers)
    return RegionItem(
        product_id=product.product_id,
        product_name=product.product_name,
        category=product.category,
        match_rate=match_rate,
        match_rate_low=round(low * 100, 1),
        match_rate_high=round(high * 100, 1),
        affinity=affinity(match_rate),
        mean_score=round(product.mean_score or 0.0, 4),
        users=product.count,
    )
