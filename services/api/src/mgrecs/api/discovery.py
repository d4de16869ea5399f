"""A customer's discovery list (what they have not bought): the cache, then the engine in real
time, then popularity; of the asked categories and of the customer's experiment arm's model.
Served as `/v1/users/{id}/recommendations`, and completes the buy-again list."""

import dataclasses
import enum

from fastapi import HTTPException

from mgrecs.api.deps import Serving
from mgrecs.api.engine import EngineUnavailable
from mgrecs.api.experiment_serving import arm_campaign, serving_arm
from mgrecs.api.metrics import count_answer
from mgrecs.api.new_items import customer_items_with_new, slot_candidates
from mgrecs.api.recommendations import cached_in_categories, freshness, popular_items
from mgrecs.api.repository import CachedList
from mgrecs.api.rule_book import apply_items
from mgrecs.api.schemas.experiments import ExperimentTag
from mgrecs.api.schemas.users import UserRecommendations
from mgrecs.common.experiments import Serves
from mgrecs.engine.business_rules import Applicable
from mgrecs.engine.new_items import NewProduct


class NotFetched(enum.Enum):
    """The cached list was not read yet (None means: read, and there is none)."""

    TOKEN = 0


NOT_FETCHED = NotFetched.TOKEN


@dataclasses.dataclass(frozen=True)
class Discovered:
    """A discovery list with what explains it: the customer's region, when it was read, and
    the business rules applied."""

    answer: UserRecommendations
    region: str | None
    rules: Applicable


async def discovery(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str = "users",
    cached: CachedList | None | NotFetched = NOT_FETCHED,
    rules: Applicable | None = None,
) -> UserRecommendations:
    """The list of `/v1/users/{id}/recommendations` (`discovered` says how)."""
    found = await discovered(serving, user_id, limit, category, endpoint, cached, rules)
    return found.answer


async def discovered(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str = "users",
    cached: CachedList | None | NotFetched = NOT_FETCHED,
    rules: Applicable | None = None,
) -> Discovered:
    """The list of `/v1/users/{id}/recommendations` (its docstring says what serves when);
    answers are counted in `SOURCES` under `endpoint`. Unknown customer: HTTP 404. `cached`:
    the customer's cached list when the caller already read it (`repository.user_cache`).

    The business rules in force for the customer's region (`rules` instead, when given) apply
    to whichever list answers; the source is asked for extra candidates while a filter or a
    boost is in force, so that the list keeps its length. With `category`, only filters and
    boosts apply (a pinned or promoted product may be of another category)."""
    region = None
    if rules is None:
        if serving.rules.scoped and isinstance(cached, NotFetched):
            new = _new_candidates(serving, limit, category)  # read with it, as below
            cached = await serving.repository.user_cache(user_id, new)  # it has the region
        region, rules = await customer_rules(serving, user_id, cached)
    if category:
        rules = dataclasses.replace(rules, promoted=(), share=0.0, pins=())
    asked = rules.candidates(limit, serving.settings.rules_extra_candidates)
    answer = await _arm_answer(serving, user_id, asked, category, endpoint, cached)
    if not ((rules.empty and asked == limit) or answer.source == "none"):
        # "none": a holdout arm served nothing, and gets nothing added
        answer = answer.model_copy(update={"items": apply_items(answer.items, limit, rules)})
    return Discovered(answer, region, rules)


async def customer_rules(
    serving: Serving, user_id: str, cached: CachedList | None | NotFetched = NOT_FETCHED
) -> tuple[str | None, Applicable]:
    """The customer's region and the business rules in force now for their lists (their
    region's, when a rule is scoped to a region: from their cached row `cached` when there
    is one, else the customer is looked up; None when no rule is scoped to a region: then
    it is not needed, and not read)."""
    region = None
    if serving.rules.scoped:
        if isinstance(cached, CachedList):
            region = cached.region
        else:
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
    """The list before the business rules: of the customer's experiment arm, if any. Every
    model arm is served in real time (never the cache, which holds one version only), so
    that arms differ by their model alone (`experiment_serving`); a holdout arm gets
    popularity or nothing."""
    assigned = serving_arm(serving.settings, user_id)
    if assigned is None:
        new = _new_candidates(serving, limit, category)
        cached = await _read_cache(serving, user_id, cached, new)
        answer = await _recommendations(serving, user_id, limit, category, endpoint, cached)
        return await _finalised(serving, user_id, answer, limit, new, cached)
    experiment, arm = assigned
    tag = ExperimentTag(experiment_id=experiment.id, arm=arm.name)
    if arm.holdout:
        answer = await _holdout_answer(serving, user_id, limit, category, endpoint, arm.serves)
        return answer.model_copy(update={"experiment": tag})
    answer = await _recommendations(
        serving,
        user_id,
        limit,
        category,
        endpoint,
        None,
        campaign_arn=arm_campaign(arm, serving.settings),
        realtime_version=arm.model_version,
    )
    new = _new_candidates(serving, limit, category)
    answer = await _finalised(serving, user_id, answer, limit, new, None)
    return answer.model_copy(update={"experiment": tag})


def _new_candidates(serving: Serving, limit: int, category: list[str] | None) -> list[NewProduct]:
    """The new products that may fill the customer's "new in your categories" slot."""
    return slot_candidates(serving.new_products, serving.settings, serving.clock(), limit, category)


async def _holdout_answer(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str,
    serves: Serves,
) -> UserRecommendations:
    """A held-out customer's list: regional popularity, or none (`serves` "nothing"); the
    customer must be known, as for every list (404)."""
    customer = await serving.repository.customer(user_id)
    if customer is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    if serves == "nothing":
        count_answer(endpoint, "none")
        return UserRecommendations(user_id=user_id, source="none", updated_at=None, items=[])
    count_answer(endpoint, "popular")
    return UserRecommendations(
        user_id=user_id,
        source="popular",
        updated_at=None,
        items=await popular_items(
            serving.repository, serving.settings, customer.region, limit, category
        ),
    )


async def _read_cache(
    serving: Serving,
    user_id: str,
    cached: CachedList | None | NotFetched,
    new: list[NewProduct],
) -> CachedList | None:
    """The customer's cached list (as the caller read it, else read now, with the
    customer's part of the new-products slot when there are `new` products)."""
    if isinstance(cached, NotFetched):
        return await serving.repository.user_cache(user_id, new)
    return cached


async def _finalised(
    serving: Serving,
    user_id: str,
    answer: UserRecommendations,
    limit: int,
    new: list[NewProduct],
    cached: CachedList | None,
) -> UserRecommendations:
    """The list as served, whatever its source: with the "new in your categories" slot."""
    items = await customer_items_with_new(
        serving.new_products,
        serving.settings,
        user_id,
        answer.items,
        limit,
        new,
        cached.customer if cached is not None else None,
    )
    return answer if items is answer.items else answer.model_copy(update={"items": items})


async def _recommendations(
    serving: Serving,
    user_id: str,
    limit: int,
    category: list[str] | None,
    endpoint: str,
    cached: CachedList | None,
    campaign_arn: str | None = None,
    realtime_version: str | None = None,
) -> UserRecommendations:
    """Cache (`cached`: None when there is none or it may not serve), engine (`campaign_arn`
    serving `realtime_version`, else the user campaign serving the active version),
    popularity: the first that has an answer. A cached list older than one of the customer's
    orders, or of a stale generation (past `cache_ttl_hours`), yields to the engine, which
    knows the order (the tracker sent it); it still serves, as the best there is, when the
    engine has no answer."""
    repository = serving.repository
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
        count_answer(endpoint, "realtime")
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
    count_answer(endpoint, "popular")
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
    count_answer(endpoint, "cache")
    return UserRecommendations(
        user_id=user_id,
        source="cache",
        updated_at=cached.updated_at,
        items=await cached_in_categories(serving.repository, cached.items, limit, category),
        model_version=cached.model_version,
        **freshness(cached.age),
    )
