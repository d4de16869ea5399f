"""The batch's side of cache generations (`mgrecs.store.cache_generations`): one per infer
run, building until every shard is written, then current in the same transaction as its last
shard. A run that fails or is abandoned never becomes current, so the previous generation
keeps serving. Here: the logging and metrics of each step, waiting for a generation, and
which old ones to drop.
"""

import asyncio
import time
from datetime import datetime, timedelta

import asyncpg

from mgrecs.batch.metrics import ROWS_DELETED
from mgrecs.common.logging import get_logger
from mgrecs.store import cache_generations
from mgrecs.store.cache import SIMILAR, USERS
from mgrecs.store.cache_generations import Generation, GenerationFailed, ShardCounts

log = get_logger(__name__)

REMOVE_LOCK_TIMEOUT_SECONDS = 30.0
"""A partition's detach waits this long for the transactions reading the cache before it
(it blocks none of them), then is left for the next cleanup."""
POLL_SECONDS = 0.5


async def create(
    pool: asyncpg.Pool,
    *,
    tick_id: str | None,
    model_version: str,
    artifact_uri: str,
    shards: int,
    active_since: datetime,
) -> Generation:
    """A new building generation with its (empty) partitions."""
    generation = await cache_generations.create(
        pool,
        tick_id=tick_id,
        model_version=model_version,
        artifact_uri=artifact_uri,
        shards=shards,
        active_since=active_since,
    )
    log.info("cache_generation_started", generation=generation.generation, shards=shards)
    return generation


async def fail(pool: asyncpg.Pool, generation: int, error: str) -> None:
    """Mark the generation failed, if it is still building."""
    if await cache_generations.fail(pool, generation, error):
        log.warning("cache_generation_failed", generation=generation, error=error)


async def fail_stale(pool: asyncpg.Pool, timeout: timedelta) -> None:
    """Fail generations building for longer than `timeout` (their worker is gone)."""
    count = await cache_generations.fail_stale(pool, timeout.total_seconds())
    if count:
        log.warning("cache_generations_stale_failed", count=count)


async def complete_shard(
    conn: asyncpg.Connection,
    generation: int,
    shard: int,
    worker: str,
    counts: ShardCounts,
    seconds: float,
) -> bool:
    """Inside the shard's transaction, after its rows: record it done, and flip the generation
    to current when it was the last. Returns whether this shard completed the generation.
    Raises GenerationFailed when the generation stopped building meanwhile (rolls back)."""
    flip = await cache_generations.complete_shard(conn, generation, shard, worker, counts, seconds)
    if flip is None:
        return False
    if flip.superseded:
        log.info("cache_generation_superseded", generation=generation, current=flip.previous)
        return True
    ROWS_DELETED.labels(USERS.view).inc(flip.users_dropped)
    ROWS_DELETED.labels(SIMILAR.view).inc(flip.products_dropped)
    log.info("cache_generation_current", generation=generation, previous=flip.previous)
    return True


async def clean(pool: asyncpg.Pool, keep: int) -> list[int]:
    """Drop the rows of generations no longer needed: every failed one, and retired ones
    beyond the newest `keep - 1` (the current generation counts as one kept), without ever
    blocking cache readers (`cache_generations.drop_rows`). Returns the generations dropped;
    one whose detach outwaits REMOVE_LOCK_TIMEOUT_SECONDS is left for the next clean."""
    candidates = await cache_generations.droppable(pool)
    retired = [row["generation"] for row in candidates if row["state"] == "retired"]
    doomed = sorted(
        [row["generation"] for row in candidates if row["state"] == "failed"]
        + retired[max(keep - 1, 0) :]
    )
    dropped = []
    lock_timeout_ms = round(REMOVE_LOCK_TIMEOUT_SECONDS * 1000)
    async with pool.acquire() as conn:
        for generation in doomed:
            try:
                await cache_generations.drop_rows(conn, generation, lock_timeout_ms)
            except cache_generations.REMOVE_POSTPONED as exc:
                log.info("cache_generation_drop_postponed", generation=generation, error=str(exc))
                continue
            dropped.append(generation)
    if dropped:
        log.info("cache_generations_dropped", generations=dropped)
    return dropped


async def wait(pool: asyncpg.Pool, generation: int, deadline: float) -> Generation:
    """Poll until the generation is no longer building; fail it at `deadline` (monotonic).
    Returns it once current (or retired: superseded by a newer one); raises GenerationFailed
    when it failed."""
    while True:
        found = await cache_generations.get(pool, generation)
        if found is None:
            raise GenerationFailed(f"generation {generation} is gone")
        if found.state == "failed":
            raise GenerationFailed(f"generation {generation} failed: {found.error}")
        if found.state != "building":
            return found
        if time.monotonic() > deadline:
            await fail(pool, generation, "timed out waiting for its shards")
            continue
        await asyncio.sleep(POLL_SECONDS)
