"""Liveness and readiness: the API is useful only while the database answers, and ready only
while the cache it serves is fresh."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mgrecs.api.deps import RepositoryDep, SettingsDep
from mgrecs.api.repository import Repository
from mgrecs.api.schemas import Health, Readiness
from mgrecs.common.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger(__name__)


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health}},
)
async def healthz(repository: RepositoryDep) -> Health | JSONResponse:
    try:
        await repository.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        log.warning("healthz_database_unreachable", error=str(exc))
        body = Health(status="unavailable", detail="database unreachable")
        return JSONResponse(status_code=503, content=body.model_dump())
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses={503: {"model": Readiness}},
)
async def readyz(repository: RepositoryDep, settings: SettingsDep) -> Readiness | JSONResponse:
    """503 while the database is unreachable or the cache is past `cache_ttl_hours` (a
    balancer then sends traffic to an instance that serves cached lists)."""
    checks = {"database": "ok", "cache": "ok"}
    try:
        await repository.ping()
        checks["cache"] = await _cache_check(repository, settings.cache_ttl_hours)
    except Exception as exc:  # any failure to reach the database means not ready
        log.warning("readyz_database_unreachable", error=str(exc))
        checks = {"database": "unreachable", "cache": "unknown (no database)"}
    failed = [f"{name}: {verdict}" for name, verdict in checks.items() if verdict != "ok"]
    if failed:
        body = Readiness(status="unavailable", detail=failed[0], checks=checks)
        return JSONResponse(status_code=503, content=body.model_dump(exclude_none=True))
    return Readiness(status="ok", checks=checks)


async def _cache_check(repository: Repository, ttl_hours: float) -> str:
    """`ok`, or why the cache would not be served (no current generation, or too old)."""
    age = await repository.cache_age_seconds()
    if age is None:
        return "no current cache generation"
    if ttl_hours > 0 and age > ttl_hours * 3600:
        hours = age / 3600
        return f"the current generation is {hours:.1f} h old, over cache_ttl_hours {ttl_hours:g}"
    return "ok"
