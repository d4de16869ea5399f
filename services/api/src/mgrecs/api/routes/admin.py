"""Operator actions over HTTP (admin key only, see guard.py): cache invalidation and ticks,
the same as `mgrecs cache invalidate` and `mgrecs tick`."""

from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException

from mgrecs.api.deps import PoolDep, SettingsDep
from mgrecs.api.schemas.admin import InvalidateRequest, Invalidation, TickSent
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.channels import publish_tick
from mgrecs.common.logging import get_logger
from mgrecs.common.schemas import TickKind
from mgrecs.store.cache import invalidate

router = APIRouter(prefix="/v1/admin", tags=["admin"])
log = get_logger(__name__)


@router.post("/cache/invalidate", response_model=Invalidation)
async def invalidate_cache(body: InvalidateRequest, pool: PoolDep) -> Invalidation:
    """Stop serving cached lists (all, a region's, a customer's) until the next generation;
    the API answers them in real time meanwhile."""
    done = await invalidate(pool, everything=body.all, region=body.region, customer=body.customer)
    log.info("cache_invalidated", generation=done.generation, users=done.users)
    return Invalidation(generation=done.generation, users=done.users, products=done.products)


@router.post(
    "/ticks/{kind}",
    response_model=TickSent,
    status_code=202,
    responses={503: {"model": ErrorMessage, "description": "the broker is unreachable"}},
)
async def send_tick(kind: TickKind, settings: SettingsDep) -> TickSent:
    """Publish a schedule tick now (a batch worker runs its job)."""
    try:
        tick = await publish_tick(settings, kind)
    except KafkaError as exc:
        log.error("tick_not_published", kind=kind, error=str(exc))
        raise HTTPException(
            status_code=503, detail="broker unavailable: tick not published"
        ) from exc
    log.info("tick_published", kind=kind, tick_id=tick.tick_id)
    return TickSent(kind=tick.kind, tick_id=tick.tick_id)
