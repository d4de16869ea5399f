"""Prometheus helpers: workers expose their own /metrics port, HTTP services add a route."""

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose the default registry on http://host:port/metrics (background thread)."""
    start_http_server(port, addr=host)


def add_metrics_route(app: Starlette) -> None:
    """`GET /metrics` on an HTTP service (a route, so no redirect to `/metrics/`)."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics, include_in_schema=False)
