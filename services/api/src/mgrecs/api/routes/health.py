"""Liveness and readiness: alive while the process answers, ready while its database does.
The cache's age makes nobody unready: a stale cache still serves, marked stale (docs/concepts.md,
The cache), so a late infer never takes every API instance out of the balancer at once."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mgrecs.api.deps import RepositoryDep
from mgrecs.api.schemas.health import Health, Readiness
from mgrecs.common.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger(__name__)


@router.get("/healthz", response_model=Health, response_model_exclude_none=True)
async def healthz() -> Health:
    """The process and its event loop answer (liveness: a database outage must not restart
    the API)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses={503: {"model": Readiness}},
)
async def readyz(repository: RepositoryDep) -> Readiness | JSONResponse:
    """503 while the database is unreachable: without it the API cannot answer."""
    try:
        await repository.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        log.warning("readyz_database_unreachable", error=str(exc))
        checks = {"database": "unreachable"}
        body = Readiness(status="unavailable", detail="database: unreachable", checks=checks)
        return JSONResponse(status_code=503, content=body.model_dump(exclude_none=True))
    return Readiness(status="ok", checks={"database": "ok"})
