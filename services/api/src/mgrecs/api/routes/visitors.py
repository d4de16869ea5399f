"""Visitors (no customer id): the region's popular and trending products. The frontend asks
here when the per-customer endpoint answers 404 (an unknown customer)."""

import dataclasses
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from mgrecs.api.deps import (
    AnswerCacheDep,
    ClockDep,
    NamesDep,
    RepositoryDep,
    RulesDep,
    ServedDep,
    SettingsDep,
)
from mgrecs.api.routes.params import Categories, Limit
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.api.schemas.visitors import VisitorRecommendations
from mgrecs.api.visitors import finalise_visitor_list, visitor_recommendations
from mgrecs.common.schemas import ID_PATTERN

router = APIRouter(prefix="/v1/visitors", tags=["visitors"])

VisitorRegion = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="the visitor's region (none: everywhere)",
        examples=["north"],
    ),
]


@router.get(
    "/recommendations",
    response_model=VisitorRecommendations,
    responses={404: {"model": ErrorMessage, "description": "unknown region"}},
    summary="Recommendations for a visitor without a customer id",
)
async def visitor_recommendations_route(
    repository: RepositoryDep,
    settings: SettingsDep,
    clock: ClockDep,
    answers: AnswerCacheDep,
    keeper: RulesDep,
    names: NamesDep,
    served: ServedDep,
    region: VisitorRegion = None,
    limit: Limit = 10,
    category: Categories = None,
) -> VisitorRecommendations:
    """The products most bought in the region over `active_days` (`popular in <region>`),
    with the products trending there (purchases rising in the last week against the four
    before, `trending in <region>`) at `visitor_trending_share` of the slots. A region with
    no purchase in that time gets everywhere's (`popular`, `trending`); with `category`,
    only products of those categories. A region no customer lives in: 404. The business
    rules in force for the region apply (with `category`, only filters and boosts)."""
    rules = keeper.applicable(region, clock())
    if category:
        rules = dataclasses.replace(rules, promoted=(), share=0.0, pins=())
    asked = rules.candidates(limit, settings.rules_extra_candidates)

    async def compute() -> VisitorRecommendations:
        # In here, so a remembered answer costs no query (an error is never remembered).
        if region is not None and not await repository.region_exists(region):
            raise HTTPException(status_code=404, detail=f"unknown region {region}")
        return await visitor_recommendations(repository, settings, clock(), region, asked, category)

    answer: VisitorRecommendations = await answers.get(
        "visitors", (region, tuple(category or ()), asked), compute
    )
    answer = finalise_visitor_list(answer, limit, rules)
    served.record("visitor", answer.items, answer.source, region=region, rule_ids=rules.key)
    return answer.model_copy(update={"items": await names.name_items(answer.items)})
