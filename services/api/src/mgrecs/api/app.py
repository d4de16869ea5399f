"""The API application: routes, error handling, metrics, and the process-wide resources."""

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from mgrecs.api import hot_statements, openapi
from mgrecs.api.answer_cache import AnswerCache
from mgrecs.api.cost_gauges import refresh_cost_gauges
from mgrecs.api.deps import Clock, Serving, utc_now
from mgrecs.api.engine import Engine
from mgrecs.api.engine_replicas import runtime_clients
from mgrecs.api.feedback import FeedbackPublisher
from mgrecs.api.guard import ApiGuard
from mgrecs.api.metrics import HTTP, refresh_serving_gauges
from mgrecs.api.new_items import NewProductsKeeper
from mgrecs.api.product_names import NameMemo
from mgrecs.api.repository import Repository
from mgrecs.api.routes import (
    admin,
    cost,
    dashboard,
    docs,
    experiments,
    feedback,
    health,
    products,
    quality,
    regions,
    reports,
    rules,
    status,
    users,
    visitors,
)
from mgrecs.api.routes.lean import flat_routes
from mgrecs.api.rule_book import RuleKeeper
from mgrecs.api.sampling import SampleMemo
from mgrecs.api.security_headers import HEADERS
from mgrecs.api.served_recorder import ServedRecorder
from mgrecs.common.body_limit import BodyLimit
from mgrecs.common.db import DATABASE_UNREACHABLE, create_pool
from mgrecs.common.http_edge import HttpEdge
from mgrecs.common.logging import get_logger
from mgrecs.common.metrics import add_metrics_route
from mgrecs.common.settings import Settings
from mgrecs.common.usage import mode_of
from mgrecs.store import model_versions
from mgrecs.store.usage import metering

log = get_logger(__name__)

GC_THRESHOLDS = (50_000, 20, 20)
"""A young collection after 50,000 net allocations, not Python's 700: the requests in flight
hold more than 700 objects at once, so at 700 a queue alone triggered ~140 young, ~13 middle
and ~1 full collection a second (that one 40 ms, over ~50,000 unfrozen objects), ~13 % of the
CPU of a worker trying to drain it. At 50,000: no collection in most 10 s windows at
1,000 requests/s, rarely one of 15 ms; the user endpoint's p99 better in 5 of 5 rounds."""

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own OpenTelemetry off: the API exports none (its metrics are Prometheus'), and
left on, FastAPI asks the OpenTelemetry providers on every request whether one was
configured (os.environ reads included; bench/RESULTS.md, the api's floor)."""


def create_app(settings: Settings, clock: Clock = utc_now) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # min_size=0: the API starts (and /readyz says 503) while the database is down.
            # When it answers, `hot_statements.fill` opens the connections now (else requests
            # open them); every one is readied by `hot_statements.prepare`, and kept.
            # No session reset on release: the API never changes session state (only reads,
            # and transaction-scoped locks in invalidation), so it saves a round trip a query.
            # No JIT: its statements are short, and compiling one costs more than it runs.
            served_recipe = model_versions.mode_recipe(settings)
            pool = await create_pool(
                settings.database_url,
                min_size=0,
                max_size=settings.api_pool_size,
                reset_sessions=False,
                setup=functools.partial(hot_statements.prepare, served_recipe=served_recipe),
                keep_idle=True,
                jit=False,
            )
            stack.push_async_callback(pool.close)
            client = await stack.enter_async_context(runtime_clients(settings))
            app.state.settings = settings
            app.state.clock = clock
            app.state.pool = pool
            app.state.repository = Repository(pool, settings.cache_ttl_hours, served_recipe)
            app.state.region_samples = SampleMemo()
            app.state.feedback = FeedbackPublisher(settings)
            stack.push_async_callback(app.state.feedback.close)
            app.state.served = ServedRecorder(settings, clock)
            app.state.served.start()
            stack.push_async_callback(app.state.served.close)
            app.state.answers = AnswerCache(pool, settings.api_answer_cache_seconds)
            app.state.engine = Engine(
                client,
                settings.user_campaign_arn,
                settings.similar_campaign_arn,
                settings.category_filter_arn,
                settings.ranking_campaign_arn,
            )
            app.state.rules = RuleKeeper(
                pool,
                settings.rules_refresh_seconds,
                settings.rules_catalogue_refresh_seconds,
                settings.margin_weight,
            )
            app.state.names = NameMemo(pool, settings.rules_catalogue_refresh_seconds)
            stack.push_async_callback(app.state.names.close)
            app.state.new_products = NewProductsKeeper(
                pool,
                served_recipe,
                settings.new_items_days,
                settings.new_items_refresh_seconds,
                clock,
            )
            app.state.serving = Serving(
                app.state.repository,
                app.state.engine,
                settings,
                pool,
                clock,
                app.state.rules,
                app.state.names,
                app.state.new_products,
                app.state.served,
                app.state.region_samples,
                app.state.answers,
            )
            try:
                await app.state.repository.ping()
                await hot_statements.fill(pool, settings.api_pool_size)
                await app.state.rules.refresh()
                if settings.new_items_share > 0:
                    await app.state.new_products.refresh()
            except Exception as exc:
                log.error("database_unreachable_at_start", error=str(exc))
            await stack.enter_async_context(metering(settings, mode_of(settings), "api", pool))
            keepers = [app.state.rules]
            if settings.new_items_share > 0:  # 0: no slot, nothing to keep
                keepers.append(app.state.new_products)
            for keeper in keepers:
                stack.push_async_callback(_cancelled, asyncio.create_task(keeper.run()))
            # What exists now lives as long as the process: kept out of the collector's
            # sight, a full collection (about 100 ms over the ~150,000 objects of the loaded
            # libraries) no longer stalls the requests that happen to trigger one.
            gc.collect()
            gc.freeze()
            stack.callback(gc.set_threshold, *gc.get_threshold())  # a test process's own
            gc.set_threshold(*GC_THRESHOLDS)
            log.info("api_started", port=settings.api_port)
            yield

    app = FastAPI(
        title="mgrecs API",
        version="1.0.0",
        description="Product recommendations per customer, per product and per region.",
        lifespan=lifespan,
        docs_url=None,  # routes/docs.py serves it without a CDN
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(ApiGuard, settings=settings)
    app.add_middleware(HttpEdge, metrics=HTTP, headers=HEADERS)
    if origins := [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]:
        # Outermost, so that preflights and refusals (401, 429) carry the CORS headers too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
        )
    flat_routes(app, users.router)  # the per-customer lists: the hot routes, lean
    for module in (
        visitors,
        products,
        regions,
        feedback,
        experiments,
        quality,
        reports,
        cost,
        health,
        admin,
        rules,
        status,
    ):
        app.include_router(module.router)
    dashboard.mount(app)
    docs.mount(app)

    async def before_scrape() -> None:
        await refresh_serving_gauges(app.state.pool)
        await refresh_cost_gauges(app.state.pool, settings, app.state.clock())

    add_metrics_route(app, before_scrape)
    _install_error_handlers(app)
    openapi.install(app)
    return app


async def _cancelled(task: "asyncio.Task[None]") -> None:
    """Cancel a background task and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _install_error_handlers(app: FastAPI) -> None:
    """4xx answers say what was wrong; nothing unexpected leaks a stack trace."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each field and what is wrong with it; the input is not echoed (it
        can be large, and NaN or bytes in it cannot be written as JSON)."""
        errors = [
            {k: v for k, v in error.items() if k not in ("ctx", "input")} for error in exc.errors()
        ]
        message = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors
        )
        return JSONResponse(
            status_code=422, content={"detail": message, "errors": jsonable_encoder(errors)}
        )

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("database_unavailable", path=request.url.path, error=str(exc))
        return JSONResponse(status_code=503, content={"detail": "database unavailable"})

    for error_type in DATABASE_UNREACHABLE:
        app.add_exception_handler(error_type, database_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error"})
