"""The engine application: Personalize-compatible routes over the served model and events."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.common.body_limit import BodyLimit
from mgrecs.common.db import create_pool
from mgrecs.common.http_edge import HttpEdge
from mgrecs.common.logging import get_logger
from mgrecs.common.metrics import add_metrics_route
from mgrecs.common.settings import Settings
from mgrecs.engine_service import metrics
from mgrecs.engine_service.errors import AwsError, error_response, handle_aws_error, too_large
from mgrecs.engine_service.registry import ServedModel
from mgrecs.engine_service.routes import router
from mgrecs.engine_service.state import EngineState
from mgrecs.store.usage import metering

log = get_logger(__name__)

ENGINE_POOL_SIZE = 4
"""Connections to PostgreSQL per engine replica: model lookups (a pinned version, the
registry's poll), `/readyz` and usage metering, never more than a few at once. PostgreSQL's
`max_connections` holds every replica's (docs/operations.md, Scale)."""

CONNECT_WAIT_SECONDS = 10.0
"""How long the start waits for the broker before serving anyway (PutEvents answering 503
until it comes)."""


def create_app(settings: Settings) -> FastAPI:
    state = EngineState(settings)

    def swapped(served: ServedModel) -> None:
        """A newer model learnt what PutEvents brought before its training: drop that."""
        if served.trained_at is None:
            return
        dropped = state.events.prune(int(served.trained_at.timestamp() * 1000))
        metrics.PRUNED.inc(dropped)
        log.info("events_pruned", lines=dropped, version=served.version, held=state.events.users)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0: the engine starts (and answers) while the database is down.
        state.pool = await create_pool(settings.database_url, min_size=0, max_size=ENGINE_POOL_SIZE)
        try:
            if await state.registry.refresh(state.pool) and state.registry.current:
                swapped(state.registry.current)  # serve the active model from the start
        except Exception as exc:
            log.error("model_registry_unreachable_at_start", error=str(exc))
        # History from the served model's training on (the database away: from the start).
        feed = asyncio.create_task(state.feed.run(_trained_at(state)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.feed.connected.wait(), CONNECT_WAIT_SECONDS)
        poller = asyncio.create_task(
            state.registry.poll(state.pool, settings.engine_model_poll_seconds, swapped)
        )
        log.info(
            "engine_started",
            port=settings.engine_port,
            model=state.registry.version,
            filters=state.filters.arns,
        )
        try:
            # The engine's own CPU seconds (self-hosted mode's cost; docs/cost.md).
            async with metering(settings, "self-hosted", "engine", state.pool):
                yield
        finally:
            for task in (poller, feed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await state.pool.close()

    app = FastAPI(
        title="mgrecs engine",
        version="1.0.0",
        description="Self-hosted stand-in for AWS Personalize (events and runtime APIs).",
        lifespan=lifespan,
    )
    app.state.engine = state
    app.include_router(router)
    add_metrics_route(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, refuse=too_large)
    app.add_middleware(HttpEdge, metrics=metrics.HTTP)
    app.add_exception_handler(AwsError, handle_aws_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return error_response(AwsError(500, "InternalFailure", "internal error"))

    return app


def _trained_at(state: EngineState) -> Callable[[], datetime | None]:
    """When the model served now was trained (None: no model yet)."""

    def trained_at() -> datetime | None:
        current = state.registry.current
        return current.trained_at if current else None

    return trained_at
