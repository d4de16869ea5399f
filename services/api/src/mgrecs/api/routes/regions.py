"""The region page: what a region's active customers get recommended, from a sample fixed
per window (mode=sample) or from the batch's counts over all of them (mode=exact)."""

import dataclasses
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError

from mgrecs.api import region_stats
from mgrecs.api.deps import ClockDep, RepositoryDep, SettingsDep, serving
from mgrecs.api.recommendations import freshness
from mgrecs.api.repository import CacheAge, ProductCount, Repository
from mgrecs.api.routes.params import Categories, Limit, Region
from mgrecs.api.sampling import SampleMemo
from mgrecs.api.schemas.regions import (
    RegionItem,
    RegionMode,
    RegionRecommendations,
    Regions,
    RegionSource,
    RegionSummary,
)
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.settings import Settings
from mgrecs.engine.business_rules import Applicable, apply
from mgrecs.engine.records import Scored

router = APIRouter(prefix="/v1/regions", tags=["regions"])

SampleSize = Annotated[
    int | None,
    Query(
        ge=1,
        description="customers to sample (default region_sample_size, 50; at most "
        "region_max_sample_size, 1000); mode=sample only",
        examples=[50],
    ),
]


@router.get("", response_model=Regions, summary="The regions and their active customers")
async def regions(repository: RepositoryDep, settings: SettingsDep, clock: ClockDep) -> Regions:
    """Every region with customers; active ones bought within `active_days`."""
    since = region_stats.active_since(clock(), settings.active_days)
    counts = await repository.regions(since)
    return Regions(
        active_since=since,
        regions=[
            RegionSummary(
                region=c.region, customers=c.customers, active_customers=c.active_customers
            )
            for c in counts
        ],
    )


@router.get(
    "/{region}/recommendations",
    response_model=RegionRecommendations,
    responses={404: {"model": ErrorMessage, "description": "no customer in this region"}},
    summary="Products recommended across a region, with match rate, interval and affinity",
)
async def region_recommendations(
    region: Region,
    request: Request,
    limit: Limit = 20,
    sample_size: SampleSize = None,
    category: Categories = None,
    mode: Annotated[
        RegionMode, Query(description="sample: a sample fixed per window; exact: all")
    ] = "sample",
) -> RegionRecommendations:
    """Match rate = customers who got the product / customers counted x 100, with its 95 %
    Wilson interval. Sample mode counts `sample_size` active customers of the region (the
    same ones for every request in a `region_window_hours` window) in the cache; exact mode
    counts every active customer, as the batch tallied them for the current generation.

    A generation past `cache_ttl_hours` still answers, marked `stale`; with no cached list to
    count (the cache was invalidated), the page shows what the region's active customers
    bought (`source: popular`), never an empty list while they bought anything.

    The business rules in force for the region apply (match rate is the score boosts
    multiply; a pinned or promoted product the customers did not get shows with 0 %, its
    `reason` saying why); with `category`, only filters and boosts."""
    found = serving(request)
    repository, settings, keeper = found.repository, found.settings, found.rules
    samples = found.region_samples
    size = _bounded_sample_size(
        sample_size, settings.region_sample_size, settings.region_max_sample_size
    )
    now = found.clock()
    window = region_stats.window_index(now, settings.region_window_hours)
    rules = keeper.applicable(region, now)
    if category:
        rules = dataclasses.replace(rules, promoted=(), share=0.0, pins=())

    async def compute() -> RegionRecommendations:
        return await region_list(
            repository, samples, settings, now, region, mode, size, limit, category, rules
        )

    # Fixed by design for a window, a cache generation (the cache adds the generation) and
    # the rules: computed once per API process, not per request.
    key = (region, mode, size, tuple(category or ()), limit, window, keeper.book.version, rules.key)
    answer: RegionRecommendations = await found.answers.get("region", key, compute)
    found.served.record("region", answer.items, answer.source, region=region, rule_ids=rules.key)
    return answer


async def region_list(
    repository: Repository,
    samples: SampleMemo,
    settings: Settings,
    now: datetime,
    region: str,
    mode: RegionMode,
    size: int,
    limit: int,
    category: list[str] | None,
    rules: Applicable,
) -> RegionRecommendations:
    """The region page's answer under `rules` (`region_recommendations` says how)."""
    asked = rules.candidates(limit, settings.rules_extra_candidates)
    if mode == "exact":
        answer = await _exact(repository, region, asked, category)
    else:
        answer = await _sample(repository, samples, settings, now, region, size, asked, category)
    if not answer.items:
        since = region_stats.active_since(now, settings.active_days)
        answer = await _popular(repository, region, mode, since, asked, category) or answer
    if answer.population == 0 and not await repository.region_exists(region):
        raise HTTPException(status_code=404, detail=f"unknown region {region}")
    return _ruled(answer, limit, rules)


def _ruled(answer: RegionRecommendations, limit: int, rules: Applicable) -> RegionRecommendations:
    """The region's items under the business rules (match rate as the score)."""
    if rules.empty and len(answer.items) <= limit:
        return answer
    counted = {item.product_id: item for item in answer.items}
    scored = [Scored(i.product_id, i.match_rate / 100, "") for i in answer.items]
    items = []
    for s in apply(scored, limit, rules):
        item = counted.get(s.item_id)
        if item is None:
            item = RegionItem(
                product_id=s.item_id,
                product_name=None,
                category=None,
                match_rate=0.0,
                match_rate_low=0.0,
                match_rate_high=0.0,
                affinity="Low",
                mean_score=0.0,
                users=0,
            )
        if s.reason:
            item = item.model_copy(update={"reason": s.reason})
        items.append(item)
    return answer.model_copy(update={"items": items})


def _bounded_sample_size(asked: int | None, default: int, maximum: int) -> int:
    """The asked size, or the default; over the configured maximum is a 422 like any other
    invalid parameter (the bound is a setting, so not in the OpenAPI schema)."""
    if asked is None:
        return min(default, maximum)
    if asked > maximum:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "sample_size"),
                    "msg": f"Input should be less than or equal to {maximum}",
                    "input": asked,
                }
            ]
        )
    return asked


async def _sample(
    repository: Repository,
    samples: SampleMemo,
    settings: Settings,
    now: datetime,
    region: str,
    size: int,
    limit: int,
    categories: list[str] | None,
) -> RegionRecommendations:
    """The window's sample of the region's active customers, counted in the cache."""
    index = region_stats.window_index(now, settings.region_window_hours)
    since = region_stats.active_since(now, settings.active_days)
    sample = await samples.get(
        region, index, size, lambda n: repository.region_sample(region, since, index, n)
    )
    customers = sample.customers
    products = await repository.region_aggregate(customers, limit, categories) if customers else []
    return _answer(
        region,
        "sample",
        "cache",
        products,
        sample_size=len(customers),
        population=sample.population,
        window_start=region_stats.window_start(index, settings.region_window_hours),
        window_end=region_stats.window_start(index + 1, settings.region_window_hours),
        age=await repository.cache_age() if products else None,
    )


async def _exact(
    repository: Repository, region: str, limit: int, categories: list[str] | None
) -> RegionRecommendations:
    """The current generation's counts, however old; none while no generation is current."""
    current = await repository.region_generation(region)
    if current is None:
        return _answer(region, "exact", "aggregates", [], sample_size=0, population=0)
    products = await repository.region_exact(current.generation, region, limit, categories)
    return _answer(
        region,
        "exact",
        "aggregates",
        products,
        sample_size=current.population,
        population=current.population,
        generation=current.generation,
        computed_at=current.completed_at,
        age=current.age,
    )


async def _popular(
    repository: Repository,
    region: str,
    mode: RegionMode,
    since: datetime,
    limit: int,
    categories: list[str] | None,
) -> RegionRecommendations | None:
    """What the region's active customers bought, over all of them; None if nothing."""
    products, population = await repository.region_popular(region, since, limit, categories)
    if not products:
        return None
    return _answer(region, mode, "popular", products, sample_size=population, population=population)


def _answer(
    region: str,
    mode: RegionMode,
    source: RegionSource,
    products: list[ProductCount],
    *,
    sample_size: int,
    population: int,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    generation: int | None = None,
    computed_at: datetime | None = None,
    age: CacheAge | None = None,
) -> RegionRecommendations:
    return RegionRecommendations(
        region=region,
        mode=mode,
        source=source,
        window_start=window_start,
        window_end=window_end,
        generation=generation,
        computed_at=computed_at,
        population=population,
        sample_size=sample_size,
        items=[region_stats.region_item(product, sample_size) for product in products],
        **freshness(age),
    )
