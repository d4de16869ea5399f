"""`GET /v1/status`: the operator's overview (admin key only, see guard.py)."""

from fastapi import APIRouter

from mgrecs.api import status
from mgrecs.api.deps import PoolDep, SettingsDep
from mgrecs.api.schemas.status import Status

router = APIRouter(tags=["admin"])


@router.get(
    "/v1/status",
    response_model=Status,
    summary="Cache freshness and hit rate, models, data quality, drift, jobs, consumer lag",
)
async def get_status(pool: PoolDep, settings: SettingsDep) -> Status:
    """Read on each request (no caching): the broker part is bounded by a few seconds."""
    return await status.gather(pool, settings)
