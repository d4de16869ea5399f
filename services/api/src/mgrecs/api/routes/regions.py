"""The region page: what a fixed sample of a region's active customers get recommended."""

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from mgrecs.api import region_stats
from mgrecs.api.deps import AnswerCacheDep, RepositoryDep, SampleMemoDep, SettingsDep
from mgrecs.api.routes.params import Limit, Region
from mgrecs.api.schemas import ErrorMessage, RegionRecommendations

router = APIRouter(prefix="/v1/regions", tags=["regions"])


@router.get(
    "/{region}/recommendations",
    response_model=RegionRecommendations,
    responses={404: {"model": ErrorMessage, "description": "no customer in this region"}},
    summary="Products recommended across a region, with match rate and affinity",
)
async def region_recommendations(
    region: Region,
    repository: RepositoryDep,
    samples: SampleMemoDep,
    settings: SettingsDep,
    answers: AnswerCacheDep,
    limit: Limit = 20,
) -> RegionRecommendations:
    """Samples `region_sample_size` active customers of the region (the same ones for every
    request in a `region_window_hours` window) and aggregates their cached lists: match rate
    = sampled customers who got the product / customers sampled x 100."""
    now = datetime.now(UTC)
    index = region_stats.window_index(now, settings.region_window_hours)
    answer: RegionRecommendations = await answers.get(
        "region",
        (region, limit, index),
        lambda: _region_answer(region, limit, now, index, repository, samples, settings),
    )
    return answer


async def _region_answer(
    region: str,
    limit: int,
    now: datetime,
    index: int,
    repository: RepositoryDep,
    samples: SampleMemoDep,
    settings: SettingsDep,
) -> RegionRecommendations:
    sample = await samples.get(
        region,
        index,
        lambda: repository.region_sample(
            region,
            region_stats.active_since(now, settings.active_days),
            index,
            settings.region_sample_size,
        ),
    )
    if not sample and not await repository.region_exists(region):
        raise HTTPException(status_code=404, detail=f"unknown region {region}")
    products = await repository.region_aggregate(sample, limit) if sample else []
    return RegionRecommendations(
        region=region,
        window_start=region_stats.window_start(index, settings.region_window_hours),
        sample_size=len(sample),
        items=[region_stats.region_item(product, len(sample)) for product in products],
    )
