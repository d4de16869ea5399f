"""`GET /v1/status`: the operator's overview, gathered from the database, this process's
metrics and the broker. An empty table (no model yet, no report yet) is an empty part, and
an unreachable broker is said in `consumer_lag.error`: the page answers either way."""

import asyncio

import asyncpg

from mgrecs.api.consumer_lag import tracker_lag
from mgrecs.api.metrics import user_answers
from mgrecs.api.model_figures import offline_figures
from mgrecs.api.schemas.quality import StoredQualityReport
from mgrecs.api.schemas.status import (
    CacheStatus,
    CacheTableStatus,
    ConsumerLag,
    DriftStatus,
    GroupLagStatus,
    JobStatus,
    ModelVersionStatus,
    Status,
)
from mgrecs.common.settings import Settings
from mgrecs.store import model_versions, online_metrics
from mgrecs.store.cache import SIMILAR, USERS, current_summary
from mgrecs.store.jobs import recent as recent_jobs
from mgrecs.store.reports import latest_drift_flags, latest_reports

MODEL_VERSIONS = 10
CACHE_TABLES = ((USERS.view, "users"), (SIMILAR.view, "products"))
"""The cache tables the old readers read, with the generation's count of their rows."""
JOBS = 5


async def gather(pool: asyncpg.Pool, settings: Settings) -> Status:
    lag = asyncio.create_task(tracker_lag(settings))  # the broker round trips overlap
    try:
        cache = await _cache(pool, settings.cache_ttl_hours)
        models = await model_versions.every_recipe(pool, MODEL_VERSIONS)
        online = await online_metrics.latest(pool, [row["version"] for row in models])
        reports = await latest_reports(pool, 1)
        drift = await latest_drift_flags(pool)
        jobs = await recent_jobs(pool, JOBS)
    finally:
        lags = await lag
    quality = None
    if reports:
        quality = StoredQualityReport.of(*reports[0])
    return Status(
        cache=cache,
        models=[
            ModelVersionStatus(
                **dict(row),
                figures=offline_figures(row["metrics"]),
                online=online[row["version"]].as_dict() if row["version"] in online else None,
            )
            for row in models
        ],
        quality=quality,
        drift=None if drift is None else DriftStatus(**{**drift, "flags": drift["flags"] or []}),
        jobs=[JobStatus(**dict(row)) for row in jobs],
        consumer_lag=ConsumerLag(
            groups=[
                GroupLagStatus(group=g.group, lag=g.lag, committed=g.committed) for g in lags.groups
            ],
            dead_letters=lags.dead_letters,
            error=lags.error,
        ),
    )


async def _cache(pool: asyncpg.Pool, ttl_hours: float) -> CacheStatus:
    row = await current_summary(pool)
    answers = user_answers()
    total = sum(answers.values())
    age = None if row is None else row["age_seconds"]
    return CacheStatus(
        generation=None if row is None else row["generation"],
        model_version=None if row is None else row["model_version"],
        completed_at=None if row is None else row["completed_at"],
        age_seconds=age,
        ttl_hours=ttl_hours,
        fresh=age is not None and (ttl_hours <= 0 or age <= ttl_hours * 3600),
        users=None if row is None else row["users"],
        products=None if row is None else row["products"],
        answers=answers,
        hit_rate=round(answers["cache"] / total, 4) if total else None,
        tables=[
            CacheTableStatus(table=table, rows=None if row is None else row[rows], age_seconds=age)
            for table, rows in CACHE_TABLES
        ],
    )
