"""`cache_generations`: one row per infer run, building until every shard is written, then
current (the views of `mgrecs.store.cache` serve it) in the same transaction as its last
shard. Each generation has its own partition of each rows table: a shard's slice is
bulk-copied into them with its partial region aggregates, the flip merges those, and
dropping an old generation detaches its partitions concurrently. A run that fails or is
abandoned never becomes current, so the previous generation keeps serving.

Locks: a shard's transaction locks the shard (claim_shard) and its generation's row
(counting shards done); the flip takes FLIP_LOCK, as invalidation does.
"""

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from mgrecs.store.cache import (
    AGGREGATES_VIEW,
    FLIP_LOCK,
    PARTITIONED,
    SIMILAR,
    USERS,
    Table,
    current_generation,
    partition,
    rows_affected,
)

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


@dataclass(frozen=True)
class ShardCounts:
    users: int
    users_unknown: int
    products: int
    region_customers: dict[str, int] = field(default_factory=dict)
    """The shard's active customers per region (`aggregates`)."""


@dataclass(frozen=True)
class Flip:
    """What the flip of a completed generation did."""

    previous: int | None
    """The generation current before (None: none was)."""
    superseded: bool = False
    """A newer generation was already current: this one was retired instead."""
    users_dropped: int = 0
    products_dropped: int = 0


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
    """The generation a tick started and that is still building."""
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
    """A new building generation with its (empty) partitions, in one transaction."""
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
        await _create_partitions(conn, row["generation"])
    return Generation(**dict(row))


async def _create_partitions(conn: asyncpg.Connection, generation: int) -> None:
    """Empty partitions for a new generation. Built apart and then attached: ATTACH takes a
    lock that readers of the other generations do not wait for."""
    for view in PARTITIONED:
        name = partition(view, generation)
        await conn.execute(f"CREATE TABLE {name} (LIKE {view}_rows INCLUDING ALL)")
        await conn.execute(
            f"ALTER TABLE {view}_rows ATTACH PARTITION {name} FOR VALUES IN ({int(generation)})"
        )


async def done_shards(pool: asyncpg.Pool, generation: int) -> set[int]:
    rows = await pool.fetch("SELECT shard FROM cache_shards WHERE generation = $1", generation)
    return {row["shard"] for row in rows}


async def fail(pool: asyncpg.Pool, generation: int, error: str) -> bool:
    """Mark the generation failed, if it is still building; whether it was."""
    status = await pool.execute(
        "UPDATE cache_generations SET state = 'failed', error = $2, completed_at = now()"
        " WHERE generation = $1 AND state = 'building'",
        generation,
        error,
    )
    return rows_affected(status) == 1


async def fail_stale(pool: asyncpg.Pool, seconds: float) -> int:
    """Fail generations building for longer than `seconds`; how many."""
    status = await pool.execute(
        "UPDATE cache_generations SET state = 'failed', completed_at = now(),"
        " error = 'still building after ' || $1::float8 || ' seconds'"
        " WHERE state = 'building' AND created_at < now() - make_interval(secs => $1::float8)",
        seconds,
    )
    return rows_affected(status)


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


async def copy_rows(
    conn: asyncpg.Connection, table: Table, generation: int, csv: AsyncIterable[bytes]
) -> None:
    """COPY CSV rows (generation, key, payload JSON text, updated_at) straight into the
    generation's partition of `table` (asyncpg has no binary JSONB encoder; PostgreSQL parses
    the JSON text as it copies)."""
    await conn.copy_to_table(
        table.partition(generation),
        source=csv,
        columns=["generation", table.key, table.payload, "updated_at"],
        format="csv",
    )


async def complete_shard(
    conn: asyncpg.Connection,
    generation: int,
    shard: int,
    worker: str,
    counts: ShardCounts,
    seconds: float,
) -> Flip | None:
    """Inside the shard's transaction, after its rows: record it done, and flip the generation
    to current when it was the last (returns what the flip did; None: not the last).
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
        return None
    return await _flip(conn, generation)


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


async def _flip(conn: asyncpg.Connection, generation: int) -> Flip:
    """Make `generation` current, unless a newer one already is (then it is retired)."""
    await conn.execute(FLIP_LOCK)
    current = await current_generation(conn)
    if current is not None and current > generation:
        await conn.execute(
            "UPDATE cache_generations SET state = 'retired', completed_at = now()"
            " WHERE generation = $1",
            generation,
        )
        await discard_region_partials(conn, generation)
        return Flip(current, superseded=True)
    await _merge_region_partials(conn, generation)
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
    return Flip(current, users_dropped=users_dropped, products_dropped=products_dropped)


async def droppable(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Retired and failed generations whose rows are still there, newest first."""
    return list(
        await pool.fetch(
            """
            SELECT generation, state FROM cache_generations
            WHERE state IN ('retired', 'failed') AND dropped_at IS NULL
            ORDER BY generation DESC
            """
        )
    )


DETACH_STATE = """
SELECT i.inhdetachpending FROM pg_inherits i
WHERE i.inhrelid = to_regclass($1) AND i.inhparent = to_regclass($2)
"""
"""Whether the partition $1 is attached to $2: false; pending detach: true; no row: neither."""

REMOVE_POSTPONED = (
    asyncpg.LockNotAvailableError,
    asyncpg.ObjectNotInPrerequisiteStateError,  # another cleanup is detaching it
    asyncpg.UndefinedTableError,  # another cleanup detached it meanwhile
)
"""What `drop_rows` raises when a partition's detach has to wait for the next try."""


async def drop_rows(conn: asyncpg.Connection, generation: int, lock_timeout_ms: int) -> None:
    """Detach the generation's partitions CONCURRENTLY, then drop them, and record it: the
    parent tables only ever take SHARE UPDATE EXCLUSIVE locks, so cache reads never wait (a
    plain DROP of a partition locks its parent ACCESS EXCLUSIVE, queueing every reader
    behind it).

    Outside any transaction (CONCURRENTLY cannot run in one). A detach waits for the
    transactions that read the parent before it, up to `lock_timeout_ms` (then raises one of
    REMOVE_POSTPONED); one interrupted there stays pending and is finalized by the next
    call."""
    await conn.execute(f"SET lock_timeout = '{int(lock_timeout_ms)}ms'")
    try:
        for view in PARTITIONED:
            name, parent = partition(view, generation), f"{view}_rows"
            pending = await conn.fetchval(DETACH_STATE, name, parent)
            if pending is not None:
                mode = "FINALIZE" if pending else "CONCURRENTLY"
                await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {name} {mode}")
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await conn.execute("RESET lock_timeout")
    async with conn.transaction():
        await discard_region_partials(conn, generation)
        await conn.execute(
            "UPDATE cache_generations SET dropped_at = now() WHERE generation = $1", generation
        )


MERGE = """
WITH active AS (
    SELECT r.key AS region, sum(r.value::int) AS customers
    FROM cache_shards s CROSS JOIN LATERAL jsonb_each_text(s.region_customers) r
    WHERE s.generation = $1
    GROUP BY r.key
)
INSERT INTO {partition} (generation, region, product_id, customers, active_customers, share,
                         mean_score)
SELECT $1, p.region, p.product_id, sum(p.customers), a.customers,
       sum(p.customers)::float8 / a.customers, sum(p.score_sum) / sum(p.customers)
FROM region_aggregate_shards p JOIN active a ON a.region = p.region
WHERE p.generation = $1
GROUP BY p.region, p.product_id, a.customers
"""


async def write_region_partials(
    conn: asyncpg.Connection,
    generation: int,
    shard: int,
    partials: list[tuple[str, str, int, float]],
) -> None:
    """Inside the shard's transaction: its (region, product, customers, score sum) rows."""
    await conn.copy_records_to_table(
        "region_aggregate_shards",
        records=[(generation, shard, *row) for row in partials],
        columns=["generation", "shard", "region", "product_id", "customers", "score_sum"],
    )


async def _merge_region_partials(conn: asyncpg.Connection, generation: int) -> None:
    """Inside the flip's transaction: the shards' partials become the generation's rows."""
    name = partition(AGGREGATES_VIEW, generation)
    await conn.execute(MERGE.format(partition=name), generation)
    await discard_region_partials(conn, generation)


async def discard_region_partials(conn: asyncpg.Connection, generation: int) -> None:
    await conn.execute("DELETE FROM region_aggregate_shards WHERE generation = $1", generation)
