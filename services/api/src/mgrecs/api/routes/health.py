"""Liveness and readiness: the API is useful only while the database answers."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mgrecs.api.deps import RepositoryDep
from mgrecs.api.schemas import Health
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
