"""Prometheus metrics of the API: requests and latency per route, answer sources, the served
cache's age and model version."""

import asyncio

import asyncpg
from prometheus_client import REGISTRY, Counter, Gauge

from mgrecs.common.metrics import Children, http_metrics, set_model_version
from mgrecs.store import cache

HTTP = http_metrics("api")
SOURCES = Counter(
    "mgrecs_api_answers_total",
    "Recommendation answers by where they came from (cache misses show up here)",
    ["endpoint", "source"],
)

USER_SOURCES = ("cache", "realtime", "popular")
_ANSWERS = Children(SOURCES)


def count_answer(endpoint: str, source: str) -> None:
    """One answer of `endpoint` from `source` in `SOURCES`."""
    _ANSWERS(endpoint, source).inc()


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


CACHE_AGE = Gauge(
    "mgrecs_cache_age_seconds",
    "Age of the current cache generation (read at each scrape; NaN while none is current)",
)
SCRAPE_QUERY_TIMEOUT_SECONDS = 2.0


async def refresh_serving_gauges(pool: asyncpg.Pool) -> None:
    """Set the cache age and served model version from the current generation (one indexed
    row, read at scrape time); a database that does not answer leaves them as they were."""
    try:
        async with asyncio.timeout(SCRAPE_QUERY_TIMEOUT_SECONDS):
            row = await cache.current_summary(pool)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return
    if row is None:
        CACHE_AGE.set(float("nan"))
        set_model_version("api", None)
        return
    CACHE_AGE.set(row["age_seconds"])
    set_model_version("api", row["model_version"])
