"""Turning stored rows into answers: cached lists and the popularity fallback."""

from datetime import UTC, datetime, timedelta
from typing import Any

from mgrecs.api.repository import Repository
from mgrecs.api.schemas import RecommendedItem
from mgrecs.common.settings import Settings


def cached_items(raw: list[dict[str, Any]], limit: int) -> list[RecommendedItem]:
    """The first `limit` entries of a cached list (already ordered best first)."""
    return [
        RecommendedItem(
            product_id=str(entry["product_id"]),
            score=float(entry.get("score") or 0.0),
            reason=entry.get("reason"),
        )
        for entry in raw[:limit]
    ]


async def popular_items(
    repository: Repository, settings: Settings, region: str | None, limit: int
) -> list[RecommendedItem]:
    """Most-bought products of the last `active_days` in `region` (everywhere if it has none).

    Scores are distinct buyers relative to the top product, so 1.0 is the most popular.
    """
    since = datetime.now(UTC) - timedelta(days=settings.active_days)
    counts = await repository.popular(since, region, limit) if region is not None else []
    reason = f"popular in {region}"
    if not counts:
        counts = await repository.popular(since, None, limit)
        reason = "popular"
    if not counts:
        return []
    top = counts[0].count
    return [
        RecommendedItem(product_id=c.product_id, score=round(c.count / top, 4), reason=reason)
        for c in counts
    ]
