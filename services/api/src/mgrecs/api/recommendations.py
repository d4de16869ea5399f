"""Turning stored rows into answers: cached lists and the popularity fallback."""

from datetime import UTC, datetime, timedelta
from typing import Any

from mgrecs.api.repository import CacheAge, Repository
from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.common.settings import Settings


def freshness(age: CacheAge | None) -> dict[str, Any]:
    """The `stale` and `cache_age_seconds` fields of an answer from a generation this old."""
    if age is None:
        return {}
    return {"stale": age.stale, "cache_age_seconds": round(age.seconds, 1)}


def cached_items(
    raw: list[dict[str, Any]], limit: int, only: set[str] | None = None
) -> list[RecommendedItem]:
    """The first `limit` entries of a cached list (already ordered best first); with `only`,
    the first `limit` of those products."""
    kept = raw if only is None else [e for e in raw if str(e["product_id"]) in only]
    return [
        RecommendedItem(
            product_id=str(entry["product_id"]),
            score=float(entry.get("score") or 0.0),
            reason=entry.get("reason"),
        )
        for entry in kept[:limit]
    ]


async def cached_in_categories(
    repository: Repository, raw: list[dict[str, Any]], limit: int, categories: list[str] | None
) -> list[RecommendedItem]:
    """`cached_items`, only of `categories` (by the products table) when given: a cached
    list then yields fewer than `limit` items when fewer of its products are of them."""
    if not categories:
        return cached_items(raw, limit)
    product_ids = [str(entry["product_id"]) for entry in raw]
    return cached_items(raw, limit, await repository.in_categories(product_ids, categories))


async def popular_items(
    repository: Repository,
    settings: Settings,
    region: str | None,
    limit: int,
    categories: list[str] | None = None,
) -> list[RecommendedItem]:
    """Most-bought products of the last `active_days` in `region` (everywhere if it has none),
    of `categories` when given.

    Scores are distinct buyers relative to the top product, so 1.0 is the most popular.
    """
    since = datetime.now(UTC) - timedelta(days=settings.active_days)
    counts = (
        await repository.popular(since, region, limit, categories) if region is not None else []
    )
    reason = f"popular in {region}"
    if not counts:
        counts = await repository.popular(since, None, limit, categories)
        reason = "popular"
    if not counts:
        return []
    top = counts[0].count
    return [
        RecommendedItem(product_id=c.product_id, score=round(c.count / top, 4), reason=reason)
        for c in counts
    ]


async def ranked_by_popularity(
    repository: Repository, settings: Settings, product_ids: list[str]
) -> list[RecommendedItem]:
    """Every one of `product_ids`, most distinct buyers of the last `active_days` first
    (ties and never-bought products keep their given order); scores relative to the top."""
    since = datetime.now(UTC) - timedelta(days=settings.active_days)
    buyers = await repository.buyers_of(since, product_ids)
    ordered = sorted(product_ids, key=lambda pid: -buyers.get(pid, 0))
    top = max(buyers.values(), default=0)
    return [
        RecommendedItem(
            product_id=pid,
            score=round(buyers.get(pid, 0) / top, 4) if top else 0.0,
            reason="popular",
        )
        for pid in ordered
    ]
