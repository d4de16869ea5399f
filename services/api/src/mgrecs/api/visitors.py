"""A visitor's list (no customer id): the region's popular and trending products.

The database counts the buyers (`order_reads.REGION_ACTIVITY`), `mgrecs.engine.visitors`
makes the list; a region that bought nothing in `active_days` gets everywhere's.
`finalise_visitor_list` is the one place the list is finished before it is served."""

from datetime import datetime, timedelta

from mgrecs.api.repository import Repository
from mgrecs.api.rule_book import apply_items
from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.api.schemas.visitors import VisitorRecommendations
from mgrecs.common.settings import Settings
from mgrecs.engine.business_rules import Applicable
from mgrecs.engine.trending import BASELINE_DAYS, MIN_RECENT_PURCHASERS, WINDOW_DAYS
from mgrecs.engine.visitors import visitor_list


async def visitor_recommendations(
    repository: Repository,
    settings: Settings,
    now: datetime,
    region: str | None,
    limit: int,
    categories: list[str] | None,
) -> VisitorRecommendations:
    """The list before `finalise_visitor_list`: popular in `region` (of `categories`), the
    trending products at `visitor_trending_share` of the slots."""
    window_start = now - timedelta(days=WINDOW_DAYS)

    async def activity(where: str | None) -> tuple[list[RecommendedItem], bool]:
        found, has_past = await repository.region_activity(
            where,
            now,
            now - timedelta(days=settings.active_days),
            window_start,
            window_start - timedelta(days=BASELINE_DAYS),
            categories,
            limit,
            MIN_RECENT_PURCHASERS,
        )
        scored = visitor_list(found, has_past, limit, settings.visitor_trending_share, where)
        items = [
            RecommendedItem(product_id=s.item_id, score=s.score, reason=s.reason) for s in scored
        ]
        return items, bool(found)

    items, found = await activity(region)
    if not found and region is not None:
        items, found = await activity(None)
    return VisitorRecommendations(region=region, source="popular" if items else "none", items=items)


def finalise_visitor_list(
    answer: VisitorRecommendations, limit: int, rules: Applicable
) -> VisitorRecommendations:
    """The visitor's list as served: the business rules in force for the region applied,
    after the in-process answer cache, so a rule change shows at the next request."""
    return answer.model_copy(update={"items": apply_items(answer.items, limit, rules)})
