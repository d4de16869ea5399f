"""Per-customer recommendations: cache, then the engine in real time, then popularity;
each of them only of the asked categories (and of the customer's experiment arm's model)."""

from fastapi import APIRouter, HTTPException

from mgrecs.api.deps import EngineDep, PoolDep, RepositoryDep, SettingsDep
from mgrecs.api.engine import Engine, EngineUnavailable
from mgrecs.api.experiment_schemas import ExperimentTag
from mgrecs.api.experiment_serving import arm_campaign, cache_model_version, serving_arm
from mgrecs.api.metrics import SOURCES
from mgrecs.api.recommendations import (
    cached_in_categories,
    freshness,
    popular_items,
    ranked_by_popularity,
)
from mgrecs.api.repository import CachedList, Repository
from mgrecs.api.routes.params import Categories, Limit, UserId
from mgrecs.api.schemas import ErrorMessage, RankRequest, UserRanking, UserRecommendations
from mgrecs.common.settings import Settings

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
    pool: PoolDep,
    limit: Limit = 10,
    category: Categories = None,
) -> UserRecommendations:
    """The nightly cached list; for customers without one, the engine answers in real time,
    and when the engine is down, what is popular in the customer's region.

    With `category`, only products of those categories: the cached list's (so it may hold
    fewer than `limit`: it was cut at `recommendations_per_user` before filtering), the
    engine's through its category filter, or the popular ones of those categories.

    A customer in an experiment gets its arm's model version: the cache when the cache was
    scored with it, else the engine in real time from the arm's campaign; the answer names
    the experiment and arm (`experiment`), to be echoed in feedback."""
    assigned = serving_arm(settings, user_id)
    if assigned is None:
        return await _recommendations(user_id, repository, engine, settings, limit, category)
    experiment, arm = assigned
    cache_version = await cache_model_version(pool)
    answer = await _recommendations(
        user_id,
        repository,
        engine,
        settings,
        limit,
        category,
        campaign_arn=arm_campaign(arm, settings),
        realtime_version=arm.model_version,
        serve_cache=arm.model_version == cache_version,
    )
    tag = ExperimentTag(experiment_id=experiment.id, arm=arm.name)
    return answer.model_copy(update={"experiment": tag})


async def _recommendations(
    user_id: str,
    repository: Repository,
    engine: Engine,
    settings: Settings,
    limit: int,
    category: list[str] | None,
    campaign_arn: str | None = None,
    realtime_version: str | None = None,
    serve_cache: bool = True,
) -> UserRecommendations:
    """Cache (unless `serve_cache` is off), engine (`campaign_arn` serving `realtime_version`,
    else the user campaign serving the active version), popularity: the first that has an
    answer. A cached list older than one of the customer's orders, or of a stale generation
    (past `cache_ttl_hours`), yields to the engine, which knows the order (the tracker sent
    it); it still serves, as the best there is, when the engine has no answer."""
    cached = await repository.user_cache(user_id) if serve_cache else None
    if cached is not None and not cached.outdated and not (cached.age and cached.age.stale):
        return await _cached_answer(user_id, cached, repository, limit, category)
    customer = await repository.customer(user_id)
    if customer is None and cached is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    try:
        items = await engine.for_user(user_id, limit, category, campaign_arn)
    except EngineUnavailable:
        items = []
    if items:
        SOURCES.labels("users", "realtime").inc()
        return UserRecommendations(
            user_id=user_id,
            source="realtime",
            updated_at=None,
            items=items,
            model_version=realtime_version or await repository.active_model_version(),
        )
    if cached is not None:
        return await _cached_answer(user_id, cached, repository, limit, category)
    assert customer is not None  # no cached row either: the 404 above
    SOURCES.labels("users", "popular").inc()
    return UserRecommendations(
        user_id=user_id,
        source="popular",
        updated_at=None,
        items=await popular_items(repository, settings, customer.region, limit, category),
    )


async def _cached_answer(
    user_id: str,
    cached: CachedList,
    repository: Repository,
    limit: int,
    category: list[str] | None,
) -> UserRecommendations:
    SOURCES.labels("users", "cache").inc()
    return UserRecommendations(
        user_id=user_id,
        source="cache",
        updated_at=cached.updated_at,
        items=await cached_in_categories(repository, cached.items, limit, category),
        model_version=cached.model_version,
        **freshness(cached.age),
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
