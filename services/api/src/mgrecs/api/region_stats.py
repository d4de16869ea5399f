"""The arithmetic of the region page: sampling windows, match rates, their confidence
intervals, affinity buckets."""

from datetime import UTC, datetime, timedelta

from mgrecs.api import intervals
from mgrecs.api.repository import ProductCount
from mgrecs.api.schemas.regions import Affinity, RegionItem


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


def region_item(product: ProductCount, customers: int) -> RegionItem:
    """One product's line on the region page, from its count among `customers` (the sample,
    or every active customer of the region)."""
    match_rate = round(product.count / customers * 100, 1)
    interval = intervals.wilson(product.count, customers)
    low, high = (interval.low, interval.high) if interval else (0.0, 1.0)
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
