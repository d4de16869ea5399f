"""The engine application: Personalize-compatible routes over the served model and events."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.common.body_limit import BodyLimit
from mgrecs.common.correlation import RequestIdMiddleware
from mgrecs.common.db import create_pool
from mgrecs.common.logging import get_logger
from mgrecs.common.metrics import MetricsMiddleware, add_metrics_route
from mgrecs.common.settings import Settings
from mgrecs.engine_service import metrics
from mgrecs.engine_service.errors import AwsError, error_response, handle_aws_error, too_large
from mgrecs.engine_service.replay import replay_since_training
from mgrecs.engine_service.routes import router
from mgrecs.engine_service.state import EngineState

log = get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    state = EngineState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0: the engine starts (and answers) while the database is down.
        state.pool = await create_pool(settings.database_url, min_size=0, max_size=4)
        try:
            await state.registry.refresh(state.pool)  # serve the active model from the start
        except Exception as exc:
            log.error("model_registry_unreachable_at_start", error=str(exc))
        if settings.engine_replay_on_start:
            try:
                await replay_since_training(state, state.pool)
            except Exception as exc:  # the database away: start with what PutEvents brings
                log.error("events_replay_failed", error=str(exc))
        poller = asyncio.create_task(
            state.registry.poll(state.pool, settings.engine_model_poll_seconds)
        )
        log.info(
            "engine_started",
            port=settings.engine_port,
            model=state.registry.version,
            filters=state.filters.arns,
        )
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
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
    app.add_middleware(MetricsMiddleware, metrics=metrics.HTTP)
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(AwsError, handle_aws_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return error_response(AwsError(500, "InternalFailure", "internal error"))

    return app
