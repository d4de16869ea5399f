"""The ingest HTTP service: upstream systems push orders (they land on topic `orders`) and
catalogue records (topic `products`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from mgrecs.common.body_limit import BodyLimit
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.http_edge import HttpEdge
from mgrecs.common.logging import get_logger
from mgrecs.common.metrics import add_metrics_route
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.common.usage import mode_of
from mgrecs.ingest.contract import asyncapi_document
from mgrecs.ingest.dedup import drop_repeats
from mgrecs.ingest.guard import PushGuard, api_keys, too_large
from mgrecs.ingest.identity import Resolver, open_resolver, unify
from mgrecs.ingest.metrics import (
    HTTP,
    ORDERS_ACCEPTED,
    PRODUCTS_ACCEPTED,
    PUBLISH_SECONDS,
    REQUESTS_REJECTED,
)
from mgrecs.ingest.publisher import BrokerUnavailableError, OrderPublisher
from mgrecs.store.usage import metering

log = get_logger(__name__)


class OrderBatch(BaseModel):
    """Body of `POST /v1/orders`."""

    orders: list[OrderEvent] = Field(min_length=1)


class Accepted(BaseModel):
    accepted: int
    order_ids: list[str]
    duplicates: list[str] = []
    """Order ids dropped as identical repeats within the batch (one entry per copy dropped)."""


class ProductBatch(BaseModel):
    """Body of `POST /v1/products`."""

    products: list[ProductEvent] = Field(min_length=1)


class ProductsAccepted(BaseModel):
    accepted: int
    product_ids: list[str]


PUSH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong API key (`X-API-Key` or Bearer)"},
    413: {"description": "Body larger than `MGRECS_MAX_REQUEST_BYTES`"},
    503: {"description": "The broker is unavailable; retry after `Retry-After`"},
}


def broker_unavailable() -> JSONResponse:
    """503: the writes were not acknowledged; the caller retries."""
    REQUESTS_REJECTED.labels("broker_unavailable").inc()
    return JSONResponse(
        status_code=503,
        content={"detail": "the broker is unavailable, retry later"},
        headers={"Retry-After": "5"},
    )


def refused(problems: list[dict[str, Any]]) -> JSONResponse:
    """422 in the shape FastAPI gives validation errors."""
    return JSONResponse(status_code=422, content={"detail": problems})


def create_app(settings: Settings) -> FastAPI:
    publisher = OrderPublisher(settings)
    resolver: Resolver | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal resolver
        if not api_keys(settings):
            log.warning(
                "ingest_open",
                detail="MGRECS_INGEST_API_KEYS is empty: POST /v1/orders and /v1/products "
                "accept any caller",
            )
        async with (
            open_resolver(settings) as opened,
            metering(settings, mode_of(settings), "ingest"),
        ):
            resolver = opened
            await publisher.start()
            yield
            await publisher.close()

    app = FastAPIOffline(  # /docs from swagger-ui files it ships: no CDN
        title="mgrecs ingest",
        description="Push orders and catalogue records to the recommendation platform (they "
        "land on topics `orders` and `products`).",
        version="1.0.0",
        lifespan=lifespan,
    )
    add_metrics_route(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, refuse=too_large)
    app.add_middleware(PushGuard, settings=settings, paths=["/v1/orders", "/v1/products"])
    app.add_middleware(HttpEdge, metrics=HTTP)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with every problem; the echoed input is dropped (it can be the whole batch)."""
        REQUESTS_REJECTED.labels("invalid").inc()
        problems = [
            {
                "loc": list(error.get("loc", ())),
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in exc.errors()
        ]
        return refused(problems)

    @app.post("/v1/orders", status_code=202, response_model=Accepted, responses=PUSH_RESPONSES)
    async def post_orders(batch: OrderBatch) -> Any:
        """Validate a batch of orders and publish them; 202 once the broker acked them all.

        Idempotent by `order_id`: an identical repeat within the batch is published once (and
        listed in `duplicates`), a repeat with other content is a 422; across requests the
        consumers write each order id once, so re-sending a batch is harmless.
        """
        if len(batch.orders) > settings.max_request_orders:
            REQUESTS_REJECTED.labels("too_many").inc()
            return refused(
                [
                    {
                        "loc": ["body", "orders"],
                        "msg": f"at most {settings.max_request_orders} orders per request, "
                        f"got {len(batch.orders)}",
                        "type": "too_long",
                    }
                ]
            )
        deduplicated = drop_repeats(batch.orders)
        if deduplicated.conflicts:
            REQUESTS_REJECTED.labels("conflict").inc()
            return refused(deduplicated.conflicts)
        orders = deduplicated.orders
        if resolver is not None:
            unified = []
            for index, order in zip(deduplicated.indexes, orders, strict=True):
                try:
                    unified.append(await unify(order, resolver))
                except ValueError as exc:
                    REQUESTS_REJECTED.labels("invalid").inc()
                    loc = ["body", "orders", index, "customer", "customer_id"]
                    return refused([{"loc": loc, "msg": str(exc), "type": "value_error"}])
            orders = unified
        try:
            with PUBLISH_SECONDS.time():
                await publisher.publish(orders)
        except BrokerUnavailableError as exc:
            log.warning("publish_failed", error=str(exc), orders=len(batch.orders))
            return broker_unavailable()
        ORDERS_ACCEPTED.labels("http").inc(len(orders))
        return Accepted(
            accepted=len(orders),
            order_ids=[o.order_id for o in orders],
            duplicates=deduplicated.duplicates,
        )

    @app.post(
        "/v1/products",
        status_code=202,
        response_model=ProductsAccepted,
        responses=PUSH_RESPONSES,
    )
    async def post_products(batch: ProductBatch) -> Any:
        """Validate a batch of catalogue records and publish them to topic `products`; 202
        once the broker acked them all.

        Each record is the whole product as the company now keeps it; the newest `updated_at`
        wins (without it, the time of this request counts), so re-sending is harmless."""
        if len(batch.products) > settings.max_request_products:
            REQUESTS_REJECTED.labels("too_many").inc()
            return refused(
                [
                    {
                        "loc": ["body", "products"],
                        "msg": f"at most {settings.max_request_products} products per request, "
                        f"got {len(batch.products)}",
                        "type": "too_long",
                    }
                ]
            )
        try:
            with PUBLISH_SECONDS.time():
                await publisher.publish_products(batch.products)
        except BrokerUnavailableError as exc:
            log.warning("publish_failed", error=str(exc), products=len(batch.products))
            return broker_unavailable()
        PRODUCTS_ACCEPTED.labels("http").inc(len(batch.products))
        return ProductsAccepted(
            accepted=len(batch.products), product_ids=[p.product_id for p in batch.products]
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """The process answers (liveness: a broker outage must not restart ingest)."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready while the broker answers (orders cannot be taken without it): a balancer
        sends pushes elsewhere meanwhile."""
        if await publisher.healthy():
            return JSONResponse({"status": "ok", "kafka": "ok"})
        return JSONResponse({"status": "unavailable", "kafka": "unreachable"}, status_code=503)

    @app.get("/asyncapi.json")
    async def asyncapi() -> dict[str, Any]:
        """The published contract of topic `orders` (AsyncAPI 3.0)."""
        return asyncapi_document(settings.kafka_bootstrap)

    return app
