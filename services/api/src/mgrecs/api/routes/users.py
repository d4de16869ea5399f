"""Per-customer recommendations: cache, then the engine in real time, then popularity;
each of them only of the asked categories."""

from fastapi import APIRouter, HTTPException

from mgrecs.api.deps import EngineDep, RepositoryDep, SettingsDep
from mgrecs.api.engine import EngineUnavailable
from mgrecs.api.metrics import SOURCES
from mgrecs.api.recommendations import (
    cached_in_categories,
    popular_items,
    ranked_by_popularity,
)
from mgrecs.api.routes.params import Categories, Limit, UserId
from mgrecs.api.schemas import ErrorMessage, RankRequest, UserRanking, UserRecommendations

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get(
    "/{user_id}/recommendations",
    response_model=UserRecommendations,
    responses={404: {"model": ErrorMessage, "description": "unknown customer"}},
    summary="Recommendations for one customer",
)
async def user_recommendations(
    user_id: UserId,
    repository: RepositoryDep,
    engine: EngineDep,
    settings: SettingsDep,
    limit: Limit = 10,
    category: Categories = None,
) -> UserRecommendations:
    """The nightly cached list; for customers without one, the engine answers in real time,
    and when the engine is down, what is popular in the customer's region.

    With `category`, only products of those categories: the cached list's (so it may hold
    fewer than `limit`: it was cut at `recommendations_per_user` before filtering), the
    engine's through its category filter, or the popular ones of those categories."""
    cached = await repository.user_cache(user_id)
    if cached is not None:
        SOURCES.labels("users", "cache").inc()
        return UserRecommendations(
            user_id=user_id,
            source="cache",
            updated_at=cached.updated_at,
            items=await cached_in_categories(repository, cached.items, limit, category),
        )
    customer = await repository.customer(user_id)
    if customer is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    try:
        items = await engine.for_user(user_id, limit, category)
    except EngineUnavailable:
        items = []
    if items:
        SOURCES.labels("users", "realtime").inc()
        return UserRecommendations(user_id=user_id, source="realtime", updated_at=None, items=items)
    SOURCES.labels("users", "popular").inc()
    return UserRecommendations(
        user_id=user_id,
        source="popular",
        updated_at=None,
        items=await popular_items(repository, settings, customer.region, limit, category),
    )


@router.post(
    "/{user_id}/rank",
    response_model=UserRanking,
    responses={404: {"model": ErrorMessage, "description": "unknown customer"}},
    summary="Put products in order for one customer",
)
async def rank_for_user(
    user_id: UserId,
    body: RankRequest,
    repository: RepositoryDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> UserRanking:
    """The engine's personalized ranking (GetPersonalizedRanking) of the given products; when
    the engine is down, the same products by popularity (`source: popular`)."""
    if await repository.customer(user_id) is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    try:
        items = await engine.rank(user_id, body.product_ids)
    except EngineUnavailable:
        items = []
    if items:
        SOURCES.labels("rank", "realtime").inc()
        return UserRanking(user_id=user_id, source="realtime", items=items)
    SOURCES.labels("rank", "popular").inc()
    items = await ranked_by_popularity(repository, settings, body.product_ids)
    return UserRanking(user_id=user_id, source="popular", items=items)
