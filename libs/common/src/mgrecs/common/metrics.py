"""Prometheus helpers: every service serves `/metrics`; HTTP services count and time their
requests with `http_edge.HttpEdge`; every dead letter is counted here, per topic."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

Metric = TypeVar("Metric", Counter, Gauge, Histogram)


class Children(Generic[Metric]):
    """A labelled metric's children, each looked up once and kept: a `labels()` call costs a
    lock and a tuple of strings (about 6 us on a request's path). The label sets kept are
    as many as the series, which no one removes."""

    def __init__(self, metric: Metric) -> None:
        self.metric: Metric = metric
        self._kept: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *labels: str) -> Metric:
        child = self._kept.get(labels)
        if child is None:
            child = self._kept[labels] = self.metric.labels(*labels)
        return child


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
DEAD_LETTERS = Counter(
    "mgrecs_dead_letters_total", "Messages sent to a dead-letter topic", ["topic"]
)
MODEL_VERSION = Gauge(
    "mgrecs_model_version_info",
    "1 for the model version a service serves (the api: its cache generation's)",
    ["service", "version"],
)
_served: dict[str, str] = {}


def set_model_version(service: str, version: str | None) -> None:
    """Report `version` as the one `service` serves (none: no series for the service)."""
    previous = _served.pop(service, None)
    if previous is not None and previous != version:
        MODEL_VERSION.remove(service, previous)
    if version is not None:
        MODEL_VERSION.labels(service, version).set(1)
        _served[service] = version


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose the default registry on http://host:port/metrics (background thread), for a
    command with no event loop of its own to serve probes from."""
    start_http_server(port, addr=host)


def add_metrics_route(
    app: Starlette, before_scrape: Callable[[], Awaitable[None]] | None = None
) -> None:
    """`GET /metrics` (a route, so no redirect to `/metrics/`); `before_scrape` refreshes
    gauges that are cheaper to read when asked than to keep current (a cache's age)."""

    async def metrics(_: Request) -> Response:
        if before_scrape is not None:
            await before_scrape()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics, include_in_schema=False)


@dataclass(frozen=True)
class HttpMetrics:
    """A service's request counter and latency histogram, labelled by route template."""

    requests: Counter
    latency: Histogram


def http_metrics(service: str) -> HttpMetrics:
    """`mgrecs_<service>_requests_total` and `mgrecs_<service>_request_seconds`."""
    return HttpMetrics(
        Counter(
            f"mgrecs_{service}_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
        ),
        Histogram(
            f"mgrecs_{service}_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        ),
    )
