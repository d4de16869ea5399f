"""Prometheus metrics of the API: requests and latency per route, answer sources."""

import time

from prometheus_client import REGISTRY, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "mgrecs_api_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "mgrecs_api_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)
SOURCES = Counter(
    "mgrecs_api_answers_total",
    "Recommendation answers by where they came from (cache misses show up here)",
    ["endpoint", "source"],
)

USER_SOURCES = ("cache", "realtime", "popular")


def user_answers() -> dict[str, int]:
    """This process's answers of the user endpoint by source (the cache's hits and misses)."""
    return {
        source: int(
            REGISTRY.get_sample_value(
                "mgrecs_api_answers_total", {"endpoint": "users", "source": source}
            )
            or 0
        )
        for source in USER_SOURCES
    }


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by route template (bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - start)
