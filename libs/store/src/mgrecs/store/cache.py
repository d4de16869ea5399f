"""The cache (migrations 0007 and 0009): `cache_generations`, one row per infer run, each
with its own partition of the cached lists (`offline_*_rows`) and of the per-region
aggregates; the legacy table names are views of the current generation.

The current generation is read here only (`CURRENT`, the database's
`current_cache_generation()`), and every write of `cache_generations` is here: the batch
builds and flips generations, operators invalidate them. A flip and an invalidation take
FLIP_LOCK, so the two never race for `current`.
"""

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

FLIP_LOCK = "SELECT pg_advisory_xact_lock(hashtext('mgrecs:cache-flip'))"
"""Taken by a generation's flip and by invalidation, so the two never race for `current`."""


@dataclass(frozen=True)
class Table:
    view: str
    """The name the readers use: a view of the current generation."""
    key: str
    payload: str

    @property
    def rows(self) -> str:
        """The partitioned table holding every generation's rows."""
        return f"{self.view}_rows"

    def partition(self, generation: int) -> str:
        return partition(self.view, generation)


USERS = Table("offline_user_recommendations", "user_id", "recommendations")
SIMILAR = Table("offline_similar_items", "product_id", "similar_products")
TABLES = (USERS, SIMILAR)
AGGREGATES_VIEW = "region_product_aggregates"
"""Per region and product, of the current generation (`mgrecs.batch.aggregates`)."""
PARTITIONED = (*(table.view for table in TABLES), AGGREGATES_VIEW)
"""Views whose `<view>_rows` table has one `<view>_g<generation>` partition per generation."""


def partition(view: str, generation: int) -> str:
    return f"{view}_g{int(generation)}"


# --- the current generation --------------------------------------------------------------

CURRENT = "SELECT current_cache_generation()"
"""The current generation's number (NULL: none is current)."""

# The current generation: what the cache serves, however old (past the TTL, answers say
# `stale`: README, The cache), with its age in seconds; a subquery of the api's reads.
CURRENT_ROW = """(
    SELECT generation, model_version, completed_at,
           extract(epoch FROM now() - completed_at)::float8 AS age_seconds
    FROM cache_generations WHERE state = 'current'
)"""

SUMMARY = """
SELECT generation, model_version, completed_at, users, products,
       extract(epoch FROM now() - completed_at)::float8 AS age_seconds
FROM cache_generations
WHERE state = 'current'
"""

AGE = f"SELECT g.age_seconds FROM {CURRENT_ROW} g"

MODEL_VERSION = f"SELECT g.model_version FROM {CURRENT_ROW} g"


async def current_generation(db: asyncpg.Pool | asyncpg.Connection) -> int | None:
    """The generation the cache serves (None: none is current)."""
    generation: int | None = await db.fetchval(CURRENT)
    return generation


async def current_summary(pool: asyncpg.Pool) -> asyncpg.Record | None:
    """The current generation's number, model version, completion, counts and age."""
    row: asyncpg.Record | None = await pool.fetchrow(SUMMARY)
    return row


async def current_age(pool: asyncpg.Pool) -> float | None:
    """Seconds since the current generation was completed (None: none is current)."""
    seconds = await pool.fetchval(AGE)
    return None if seconds is None else float(seconds)


async def current_rows(pool: asyncpg.Pool) -> tuple[int, int]:
    """How many customers and products the cache serves (the views' rows)."""
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM offline_user_recommendations) AS users,"
        " (SELECT count(*) FROM offline_similar_items) AS products"
    )
    return int(row["users"]), int(row["products"])


async def current_model_version(pool: asyncpg.Pool) -> str | None:
    """The model version the current generation was scored with (None: none current)."""
    version: str | None = await pool.fetchval(MODEL_VERSION)
    return version


# --- the api's reads of the cached lists ---------------------------------------------------

# With the generation's model version and age, and whether an order of the customer reached
# the database, or was corrected or cancelled, after the row was written (the list does not
# know it).
USER_LIST = f"""
SELECT r.recommendations, r.updated_at, g.model_version, g.age_seconds,
       EXISTS (
           SELECT 1 FROM orders o
           WHERE o.customer_id = $1
             AND GREATEST(o.ingested_at, o.revised_at) > r.updated_at AT TIME ZONE 'UTC'
       ) AS outdated
FROM offline_user_recommendations r CROSS JOIN {CURRENT_ROW} g
WHERE r.user_id = $1
"""

SIMILAR_LIST = f"""
SELECT s.similar_products, s.updated_at, g.age_seconds
FROM offline_similar_items s CROSS JOIN {CURRENT_ROW} g
WHERE s.product_id = $1
"""

# Per product: how many of the sampled users ($1) have it in their cached list, and its
# mean score among them, of the categories $3 (any when NULL). A malformed (non-array)
# cache row counts as an empty list.
SAMPLED_LISTS = """
WITH got AS (
    SELECT r.user_id, e ->> 'product_id' AS product_id, (e ->> 'score')::float8 AS score
    FROM offline_user_recommendations r
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(r.recommendations) = 'array'
             THEN r.recommendations ELSE '[]'::jsonb END
    ) AS e
    WHERE r.user_id = ANY($1::text[])
)
SELECT g.product_id, p.name AS product_name, p.category,
       count(DISTINCT g.user_id) AS users, avg(g.score) AS mean_score
FROM got g
LEFT JOIN products p ON p.product_id = g.product_id
WHERE $3::text[] IS NULL OR p.category = ANY($3::text[])
GROUP BY g.product_id, p.name, p.category
ORDER BY users DESC, mean_score DESC, g.product_id
LIMIT $2
"""

# The current generation with its age, and the region's ($1) active customers in it, as
# its infer shards counted them.
REGION_GENERATION = f"""
SELECT g.generation, g.completed_at, g.age_seconds,
       (SELECT coalesce(sum((s.region_customers ->> $1)::int), 0)
        FROM cache_shards s WHERE s.generation = g.generation) AS population
FROM {CURRENT_ROW} g
"""

# The batch's full-population counts of one region ($1) in generation $4 (the one
# REGION_GENERATION found, so both describe the same generation), best first, of the
# categories $3 (any when NULL).
REGION_EXACT = """
SELECT a.product_id, p.name AS product_name, p.category, a.customers AS users, a.mean_score
FROM region_product_aggregates_rows a
LEFT JOIN products p ON p.product_id = a.product_id
WHERE a.generation = $4 AND a.region = $1
  AND ($3::text[] IS NULL OR p.category = ANY($3::text[]))
ORDER BY a.customers DESC, a.mean_score DESC, a.product_id
LIMIT $2
"""


async def user_list(pool: asyncpg.Pool, user_id: str) -> asyncpg.Record | None:
    """The customer's cached list with its generation's model version and age (USER_LIST)."""
    row: asyncpg.Record | None = await pool.fetchrow(USER_LIST, user_id)
    return row


async def similar_list(pool: asyncpg.Pool, product_id: str) -> asyncpg.Record | None:
    """The product's cached similar items with its generation's age (SIMILAR_LIST)."""
    row: asyncpg.Record | None = await pool.fetchrow(SIMILAR_LIST, product_id)
    return row


async def sampled_lists(
    pool: asyncpg.Pool, user_ids: list[str], limit: int, categories: list[str] | None
) -> list[asyncpg.Record]:
    """Per product: sampled users with it in their cached list, and its mean score."""
    return list(await pool.fetch(SAMPLED_LISTS, user_ids, limit, categories))


async def region_generation(pool: asyncpg.Pool, region: str) -> asyncpg.Record | None:
    """The current generation with its age and the region's active customers in it."""
    row: asyncpg.Record | None = await pool.fetchrow(REGION_GENERATION, region)
    return row


async def region_exact(
    pool: asyncpg.Pool, generation: int, region: str, limit: int, categories: list[str] | None
) -> list[asyncpg.Record]:
    """The batch's per-product counts of one region in `generation`, best first."""
    return list(await pool.fetch(REGION_EXACT, region, limit, categories, generation))


# --- generations ----------------------------------------------------------------------------

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


def _count(status: str) -> int:
    """Rows affected, from a command tag like `DELETE 3`."""
    return int(status.rsplit(" ", 1)[-1])


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
    return _count(status) == 1


async def fail_stale(pool: asyncpg.Pool, seconds: float) -> int:
    """Fail generations building for longer than `seconds`; how many."""
    status = await pool.execute(
        "UPDATE cache_generations SET state = 'failed', completed_at = now(),"
        " error = 'still building after ' || $1::float8 || ' seconds'"
        " WHERE state = 'building' AND created_at < now() - make_interval(secs => $1::float8)",
        seconds,
    )
    return _count(status)


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


# --- region aggregates ----------------------------------------------------------------------

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


# --- invalidation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Invalidated:
    generation: int | None
    """The generation invalidated; None when no generation was current."""
    users: int
    products: int


async def invalidate(
    pool: asyncpg.Pool,
    *,
    everything: bool = False,
    region: str | None = None,
    customer: str | None = None,
) -> Invalidated:
    """Remove rows from the current generation: one customer's row, a region's customers'
    rows, or all of it (the generation is retired, so nothing is served from the cache).
    The API answers what is no longer cached in real time (or from popularity) until the
    next generation becomes current. Under the flip lock, so it never races a flip."""
    if [everything, region is not None, customer is not None].count(True) != 1:
        raise ValueError("invalidate exactly one of: everything, a region, a customer")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(FLIP_LOCK)
        current = await current_generation(conn)
        if current is None:
            return Invalidated(None, 0, 0)
        users = USERS.partition(current)
        if everything:
            user_rows = await conn.fetchval(f"SELECT count(*) FROM {users}")
            product_rows = await conn.fetchval(f"SELECT count(*) FROM {SIMILAR.partition(current)}")
            await conn.execute(
                "UPDATE cache_generations SET state = 'retired',"
                " error = 'invalidated by the operator' WHERE generation = $1",
                current,
            )
            return Invalidated(current, int(user_rows), int(product_rows))
        if region is not None:
            status = await conn.execute(
                f"DELETE FROM {users} r USING customers c"
                " WHERE c.customer_id = r.user_id AND c.region = $1",
                region,
            )
        else:
            status = await conn.execute(f"DELETE FROM {users} WHERE user_id = $1", customer)
        return Invalidated(current, _count(status), 0)


# --- seeding (tests, demos) -----------------------------------------------------------------


async def put_current(
    pool: asyncpg.Pool, table: Table, key: str, payload: Any, updated_at: datetime | None = None
) -> None:
    """Write one cached row straight into the current generation (through the view), written
    at `updated_at` (UTC; default: now): how a test or a tool seeds the cache without an
    infer run."""
    await pool.execute(
        f"INSERT INTO {table.view} ({table.key}, {table.payload}, updated_at)"
        " VALUES ($1, $2, coalesce($3, now() AT TIME ZONE 'UTC'))",
        key,
        payload,
        updated_at,
    )
