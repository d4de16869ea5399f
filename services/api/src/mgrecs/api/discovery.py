"""A customer's discovery list (what they have not bought): the cache, then the engine in real
time, then popularity; of the asked categories and of the customer's experiment arm's model.
Served as `/v1/users/{id}/recommendations`, and completes the buy-again list."""

import dataclasses
import enum

from fastapi import HTTPException

from mgrecs.api.deps import Serving
from mgrecs.api.engine import EngineUnavailable
from mgrecs.api.experiment_serving import arm_campaign, cache_model_version, serving_arm
from mgrecs.api.metrics import SOURCES
from mgrecs.api.new_items import customer_items_with_new
from mgrecs.api.recommendations import cached_in_categories, freshness, popular_items
from mgrecs.api.repository import CachedList
from mgrecs.api.rule_book import apply_items
from mgrecs.api.schemas.experiments import ExperimentTag
from mgrecs.api.schemas.users import UserRecommendations
from mgrecs.engine.business_rules import Applicable


class NotFetched(enum.Enum):
    """The cached list was not read yet (None means: read, and there is none)."""

    TOKEN = 0


NOT_FETCHED = NotFetched.TOKEN


async def discovery(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str = "users",
    cached: CachedList | None | NotFetched = NOT_FETCHED,
    rules: Applicable | None = None,
) -> UserRecommendations:
    """The list of `/v1/users/{id}/recommendations` (its docstring says what serves when);
    answers are counted in `SOURCES` under `endpoint`. Unknown customer: HTTP 404. `cached`:
    the customer's cached list when the caller already read it (`repository.user_cache`).

    The business rules in force for the customer's region (`rules` instead, when given) apply
    to whichever list answers; the source is asked for extra candidates while a filter or a
    boost is in force, so that the list keeps its length. With `category`, only filters and
    boosts apply (a pinned or promoted product may be of another category)."""
    if rules is None:
        rules = await rules_for_customer(serving, user_id)
    if category:
        rules = dataclasses.replace(rules, promoted=(), share=0.0, pins=())
    asked = rules.candidates(limit, serving.settings.rules_extra_candidates)
    answer = await _arm_answer(serving, user_id, asked, category, endpoint, cached)
    if rules.empty and asked == limit:
        return answer
    return answer.model_copy(update={"items": apply_items(answer.items, limit, rules)})


async def rules_for_customer(serving: Serving, user_id: str) -> Applicable:
    """The business rules in force now for a customer's lists (their region's, when a rule
    is scoped to a region: then the customer is looked up)."""
    return (await customer_rules(serving, user_id))[1]


async def customer_rules(serving: Serving, user_id: str) -> tuple[str | None, Applicable]:
    """`rules_for_customer`, with the customer's region when it was looked up (None when no
    rule is scoped to a region: then it is not needed, and not read)."""
    region = None
    if serving.rules.scoped:
        customer = await serving.repository.customer(user_id)
        region = customer.region if customer else None
    return region, serving.rules.applicable(region, serving.clock())


async def _arm_answer(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str,
    cached: CachedList | None | NotFetched,
) -> UserRecommendations:
    """The list before the business rules: of the customer's experiment arm, if any."""
    assigned = serving_arm(serving.settings, user_id)
    if assigned is None:
        answer = await _recommendations(serving, user_id, limit, category, endpoint, cached)
        return await _finalised(serving, user_id, answer, limit, category)
    experiment, arm = assigned
    cache_version = await cache_model_version(serving.pool)
    answer = await _recommendations(
        serving,
        user_id,
        limit,
        category,
        endpoint,
        cached,
        campaign_arn=arm_campaign(arm, serving.settings),
        realtime_version=arm.model_version,
        serve_cache=arm.model_version == cache_version,
    )
    tag = ExperimentTag(experiment_id=experiment.id, arm=arm.name)
    answer = await _finalised(serving, user_id, answer, limit, category)
    return answer.model_copy(update={"experiment": tag})


async def _finalised(
    serving: Serving,
    user_id: str,
    answer: UserRecommendations,
    limit: int,
    category: list[str] | None,
) -> UserRecommendations:
    """The list as served, whatever its source: with the "new in your categories" slot."""
    items = await customer_items_with_new(
        serving.repository,
        serving.settings,
        serving.clock(),
        user_id,
        answer.items,
        limit,
        category,
    )
    return answer if items is answer.items else answer.model_copy(update={"items": items})


async def _recommendations(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str,
    cached: CachedList | None | NotFetched,
    campaign_arn: str | None = None,
    realtime_version: str | None = None,
    serve_cache: bool = True,
) -> UserRecommendations:
    """Cache (unless `serve_cache` is off), engine (`campaign_arn` serving `realtime_version`,
    else the user campaign serving the active version), popularity: the first that has an
    answer. A cached list older than one of the customer's orders, or of a stale generation
    (past `cache_ttl_hours`), yields to the engine, which knows the order (the tracker sent
    it); it still serves, as the best there is, when the engine has no answer."""
    repository = serving.repository
    if not serve_cache:
        cached = None
    elif isinstance(cached, NotFetched):
        cached = await repository.user_cache(user_id)
    if cached is not None and not cached.outdated and not (cached.age and cached.age.stale):
        return await _cached_answer(serving, user_id, cached, limit, category, endpoint)
    customer = await repository.customer(user_id)
    if customer is None and cached is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    try:
        items = await serving.engine.for_user(user_id, limit, category, campaign_arn)
    except EngineUnavailable:
        items = []
    if items:
        SOURCES.labels(endpoint, "realtime").inc()
        return UserRecommendations(
            user_id=user_id,
            source="realtime",
            updated_at=None,
            items=items,
            model_version=realtime_version or await repository.active_model_version(),
        )
    if cached is not None:
        return await _cached_answer(serving, user_id, cached, limit, category, endpoint)
    assert customer is not None  # no cached row either: the 404 above
    SOURCES.labels(endpoint, "popular").inc()
    return UserRecommendations(
        user_id=user_id,
        source="popular",
        updated_at=None,
        items=await popular_items(repository, serving.settings, customer.region, limit, category),
    )


async def _cached_answer(
    serving: Serving,
    user_id: str,
    cached: CachedList,
    limit: int,
    category: list[str] | None,
    endpoint: str,
) -> UserRecommendations:
    SOURCES.labels(endpoint, "cache").inc()
    return UserRecommendations(
        user_id=user_id,
        source="cache",
        updated_at=cached.updated_at,
        items=await cached_in_categories(serving.repository, cached.items, limit, category),
        model_version=cached.model_version,
        **freshness(cached.age),
    )
