"""Per-customer lists: discovery (cache, then the engine in real time, then popularity; of
the asked categories and the customer's experiment arm's model), buy again, ranking."""

import dataclasses

from fastapi import APIRouter, HTTPException, Request

from mgrecs.api.buy_again import buy_again, buy_again_source
from mgrecs.api.deps import (
    ClockDep,
    EngineDep,
    NamesDep,
    RepositoryDep,
    RulesDep,
    ServedDep,
    SettingsDep,
    serving,
)
from mgrecs.api.discovery import discovered
from mgrecs.api.engine import EngineUnavailable
from mgrecs.api.metrics import count_answer
from mgrecs.api.recommendations import ranked_by_popularity
from mgrecs.api.routes.lean import LeanRoute
from mgrecs.api.routes.params import Categories, Limit, UserId
from mgrecs.api.rule_book import apply_items
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.api.schemas.users import BuyAgainList, RankRequest, UserRanking, UserRecommendations

router = APIRouter(prefix="/v1/users", tags=["users"], route_class=LeanRoute)


@router.get(
    "/{user_id}/recommendations",
    response_model=UserRecommendations,
    responses={404: {"model": ErrorMessage, "description": "unknown customer"}},
    summary="Recommendations for one customer",
)
async def user_recommendations(
    user_id: UserId,
    request: Request,
    limit: Limit = 10,
    category: Categories = None,
) -> UserRecommendations:
    """The nightly cached list; for customers without one, the engine answers in real time,
    and when the engine is down, what is popular in the customer's region.

    With `category`, only products of those categories: the cached list's (so it may hold
    fewer than `limit`: it was cut at `recommendations_per_user` before filtering), the
    engine's through its category filter, or the popular ones of those categories.

    A customer in an experiment gets its arm's model version from the engine in real time
    (every arm alike, never the cache; popularity when the engine is down), or for a
    holdout arm popularity or nothing; the answer names the experiment and arm
    (`experiment`), to be echoed in feedback with its `source`."""
    found = serving(request)
    explained = await discovered(found, user_id, limit, category)
    answer = explained.answer
    found.served.record(
        "user",
        answer.items,
        answer.source,
        customer_id=user_id,
        region=explained.region,
        model_version=answer.model_version,
        experiment=answer.experiment,
        rule_ids=explained.rules.key,
    )
    return answer.model_copy(update={"items": await found.names.name_items(answer.items)})


@router.get(
    "/{user_id}/buy-again",
    response_model=BuyAgainList,
    responses={404: {"model": ErrorMessage, "description": "unknown customer"}},
    summary="What one customer is likely to buy again, then discovery",
)
async def user_buy_again(user_id: UserId, request: Request, limit: Limit = 10) -> BuyAgainList:
    """The customer's own products (bought in orders not cancelled or returned, still on
    sale), likeliest re-buy first: more distinct orders, more recent, a product people buy
    again, due by its usual interval (the active model version's repeat rates, intervals and
    parameters, stored by its retrain; defaults before the first). Each says why (`bought 5
    times, last 3 weeks ago`). When they are fewer than `limit`, the customer's discovery
    list (as `/recommendations` answers it, products already listed left out) fills the rest;
    `slot` says which part each item comes from. Unknown customer: 404, as
    `/recommendations`."""
    found = serving(request)
    answer, region, rules = await buy_again(found, user_id, limit, found.clock())
    found.served.record(
        "buy_again",
        answer.items,
        buy_again_source(answer.discovery_source),
        customer_id=user_id,
        region=region,
        model_version=answer.model_version,
        experiment=answer.experiment,
        rule_ids=rules.key,
    )
    return answer


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
    keeper: RulesDep,
    clock: ClockDep,
    names: NamesDep,
    served: ServedDep,
) -> UserRanking:
    """The engine's personalized ranking (GetPersonalizedRanking) of the given products; when
    the engine is down, the same products by popularity (`source: popular`). The business
    rules in force for the customer's region apply: filtered products leave the ranking,
    boosts and buries move the others, pins and promotions of asked products place them."""
    customer = await repository.customer(user_id)
    if customer is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    rules = keeper.applicable(customer.region, clock())
    if not rules.empty:
        asked = set(body.product_ids)
        rules = dataclasses.replace(
            rules,
            promoted=tuple(p for p in rules.promoted if p in asked),
            pins=tuple((s, p) for s, p in rules.pins if p in asked),
        )
    try:
        items = await engine.rank(user_id, body.product_ids)
    except EngineUnavailable:
        items = []
    if items:
        count_answer("rank", "realtime")
        answer = UserRanking(
            user_id=user_id,
            source="realtime",
            items=apply_items(items, len(items), rules),
            model_version=await repository.active_model_version(),
        )
    else:
        count_answer("rank", "popular")
        items = await ranked_by_popularity(repository, settings, body.product_ids)
        answer = UserRanking(
            user_id=user_id, source="popular", items=apply_items(items, len(items), rules)
        )
    served.record(
        "ranking",
        answer.items,
        answer.source,
        customer_id=user_id,
        region=customer.region,
        model_version=answer.model_version,
        rule_ids=rules.key,
    )
    return answer.model_copy(update={"items": await names.name_items(answer.items)})
