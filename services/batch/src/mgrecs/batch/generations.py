"""`cache_generations`: one row per infer run, building until every shard is written, then
current (the views serve it) in the same transaction as its last shard. A run that fails or
is abandoned never becomes current, so the previous generation keeps serving.

Locks: a shard's transaction locks its generation's row (counting shards done); the flip
and invalidation take one advisory lock, so two flips never race for `current`.
"""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from mgrecs.batch import aggregates, cache
from mgrecs.batch.metrics import ROWS_DELETED
from mgrecs.common.cache_tables import FLIP_LOCK, SIMILAR, USERS, Table
from mgrecs.common.logging import get_logger

log = get_logger(__name__)

REMOVE_LOCK_TIMEOUT_SECONDS = 30.0
"""A partition's detach waits this long for the transactions reading the cache before it
(it blocks none of them), then is left for the next cleanup."""
POSTPONED = (
    asyncpg.LockNotAvailableError,
    asyncpg.ObjectNotInPrerequisiteStateError,  # another cleanup is detaching it
    asyncpg.UndefinedTableError,  # another cleanup detached it meanwhile
)
POLL_SECONDS = 0.5

COLUMNS = """generation, tick_id, model_version, artifact_uri, shards, shards_done, state,
active_since, users, users_unknown, products, users_dropped, products_dropped, error,
created_at, completed_at"""


class GenerationFailed(Exception):
    """The generation will not become current (a shard failed, or it timed out)."""


@dataclass(frozen=True)
class Generation:
    generation: int
    tick_id: str | None
    model_version: str | None
    artifact_uri: str | None
    shards: int
    shards_done: int
    state: str
    active_since: datetime | None
    users: int
    users_unknown: int
    products: int
    users_dropped: int
    products_dropped: int
    error: str | None
    created_at: datetime
    completed_at: datetime | None


def _generation(row: asyncpg.Record | None) -> Generation | None:
    return None if row is None else Generation(**dict(row))


async def get(pool: asyncpg.Pool, generation: int) -> Generation | None:
    row = await pool.fetchrow(
        f"SELECT {COLUMNS} FROM cache_generations WHERE generation = $1", generation
    )
    return _generation(row)


async def recent(pool: asyncpg.Pool, limit: int = 10) -> list[Generation]:
    """The newest generations, newest first."""
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM cache_generations ORDER BY generation DESC LIMIT $1", limit
    )
    return [Generation(**dict(row)) for row in rows]


async def building_for_tick(pool: asyncpg.Pool, tick_id: str) -> Generation | None:
    """The generation a tick started and that is still building (a redelivered tick resumes
    it instead of starting over)."""
    row = await pool.fetchrow(
        f"SELECT {COLUMNS} FROM cache_generations WHERE tick_id = $1 AND state = 'building'"
        " ORDER BY generation DESC LIMIT 1",
        tick_id,
    )
    return _generation(row)


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
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""
            INSERT INTO cache_generations
                (tick_id, model_version, artifact_uri, shards, active_since)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING {COLUMNS}
            """,
            tick_id,
            model_version,
            artifact_uri,
            shards,
            active_since,
        )
        await cache.create_partitions(conn, row["generation"])
    generation = Generation(**dict(row))
    log.info("cache_generation_started", generation=generation.generation, shards=shards)
    return generation


async def done_shards(pool: asyncpg.Pool, generation: int) -> set[int]:
    rows = await pool.fetch("SELECT shard FROM cache_shards WHERE generation = $1", generation)
    return {row["shard"] for row in rows}


async def fail(pool: asyncpg.Pool, generation: int, error: str) -> None:
    """Mark the generation failed, if it is still building."""
    status = await pool.execute(
        "UPDATE cache_generations SET state = 'failed', error = $2, completed_at = now()"
        " WHERE generation = $1 AND state = 'building'",
        generation,
        error,
    )
    if status.endswith(" 1"):
        log.warning("cache_generation_failed", generation=generation, error=error)


async def fail_stale(pool: asyncpg.Pool, timeout: timedelta) -> None:
    """Fail generations building for longer than `timeout` (their worker is gone)."""
    status = await pool.execute(
        "UPDATE cache_generations SET state = 'failed', completed_at = now(),"
        " error = 'still building after ' || $1::float8 || ' seconds'"
        " WHERE state = 'building' AND created_at < now() - make_interval(secs => $1::float8)",
        timeout.total_seconds(),
    )
    if not status.endswith(" 0"):
        log.warning("cache_generations_stale_failed", count=int(status.rsplit(" ", 1)[-1]))


async def claim_shard(conn: asyncpg.Connection, generation: int, shard: int) -> bool:
    """Inside the shard's transaction: take the shard (a duplicate task waits here, then
    finds it done) and say whether it is still to be written."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('mgrecs:cache-shard:' || $1::bigint"
        " || ':' || $2::int, 0))",
        generation,
        shard,
    )
    return bool(
        await conn.fetchval(
            "SELECT g.state = 'building' AND NOT EXISTS ("
            "  SELECT 1 FROM cache_shards s WHERE s.generation = $1 AND s.shard = $2)"
            " FROM cache_generations g WHERE g.generation = $1",
            generation,
            shard,
        )
    )


@dataclass(frozen=True)
class ShardCounts:
    users: int
    users_unknown: int
    products: int
    region_customers: dict[str, int] = field(default_factory=dict)
    """The shard's active customers per region (`aggregates`)."""


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
    await conn.execute(
        "INSERT INTO cache_shards (generation, shard, worker, users, users_unknown, products,"
        " seconds, region_customers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        generation,
        shard,
        worker,
        counts.users,
        counts.users_unknown,
        counts.products,
        seconds,
        counts.region_customers,
    )
    row = await conn.fetchrow(
        """
        UPDATE cache_generations
        SET shards_done = shards_done + 1, users = users + $2,
            users_unknown = users_unknown + $3, products = products + $4
        WHERE generation = $1 AND state = 'building'
        RETURNING shards_done, shards
        """,
        generation,
        counts.users,
        counts.users_unknown,
        counts.products,
    )
    if row is None:
        raise GenerationFailed(f"generation {generation} is no longer building")
    if row["shards_done"] < row["shards"]:
        return False
    await _flip(conn, generation)
    return True


async def _dropped(conn: asyncpg.Connection, table: Table, old: int, new: int) -> int:
    """Keys the old generation had that the new one lacks."""
    return int(
        await conn.fetchval(
            f"""
            SELECT count(*) FROM {table.rows} o
            WHERE o.generation = $1 AND NOT EXISTS (
                SELECT 1 FROM {table.rows} n
                WHERE n.generation = $2 AND n.{table.key} = o.{table.key}
            )
            """,
            old,
            new,
        )
    )


async def _flip(conn: asyncpg.Connection, generation: int) -> None:
    """Make `generation` current, unless a newer one already is (then it is retired)."""
    await conn.execute(FLIP_LOCK)
    current = await conn.fetchval(
        "SELECT generation FROM cache_generations WHERE state = 'current'"
    )
    if current is not None and current > generation:
        await conn.execute(
            "UPDATE cache_generations SET state = 'retired', completed_at = now()"
            " WHERE generation = $1",
            generation,
        )
        log.info("cache_generation_superseded", generation=generation, current=current)
        await aggregates.discard_partials(conn, generation)
        return
    await aggregates.merge(conn, generation)
    users_dropped = products_dropped = 0
    if current is not None:
        users_dropped = await _dropped(conn, USERS, current, generation)
        products_dropped = await _dropped(conn, SIMILAR, current, generation)
        await conn.execute(
            "UPDATE cache_generations SET state = 'retired' WHERE generation = $1", current
        )
    await conn.execute(
        "UPDATE cache_generations SET state = 'current', completed_at = now(),"
        " users_dropped = $2, products_dropped = $3 WHERE generation = $1",
        generation,
        users_dropped,
        products_dropped,
    )
    ROWS_DELETED.labels(USERS.view).inc(users_dropped)
    ROWS_DELETED.labels(SIMILAR.view).inc(products_dropped)
    log.info("cache_generation_current", generation=generation, previous=current)


async def clean(pool: asyncpg.Pool, keep: int) -> list[int]:
    """Drop the rows of generations no longer needed: every failed one, and retired ones
    beyond the newest `keep - 1` (the current generation counts as one kept), without ever
    blocking cache readers (`cache.remove_partitions`). Returns the generations dropped; one
    whose detach outwaits REMOVE_LOCK_TIMEOUT_SECONDS is left for the next clean."""
    candidates = await pool.fetch(
        """
        SELECT generation, state FROM cache_generations
        WHERE state IN ('retired', 'failed') AND dropped_at IS NULL
        ORDER BY generation DESC
        """
    )
    retired = [row["generation"] for row in candidates if row["state"] == "retired"]
    doomed = sorted(
        [row["generation"] for row in candidates if row["state"] == "failed"]
        + retired[max(keep - 1, 0) :]
    )
    dropped = []
    async with pool.acquire() as conn:
        timeout = f"{REMOVE_LOCK_TIMEOUT_SECONDS * 1000:.0f}ms"
        await conn.execute(f"SET lock_timeout = '{timeout}'")
        try:
            for generation in doomed:
                try:
                    await cache.remove_partitions(conn, generation)
                except POSTPONED as exc:
                    log.info(
                        "cache_generation_drop_postponed", generation=generation, error=str(exc)
                    )
                    continue
                async with conn.transaction():
                    await aggregates.discard_partials(conn, generation)
                    await conn.execute(
                        "UPDATE cache_generations SET dropped_at = now() WHERE generation = $1",
                        generation,
                    )
                dropped.append(generation)
        finally:
            await conn.execute("RESET lock_timeout")
    if dropped:
        log.info("cache_generations_dropped", generations=dropped)
    return dropped


async def wait(pool: asyncpg.Pool, generation: int, deadline: float) -> Generation:
    """Poll until the generation is no longer building; fail it at `deadline` (monotonic).
    Returns it once current (or retired: superseded by a newer one); raises GenerationFailed
    when it failed."""
    while True:
        found = await get(pool, generation)
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
