"""The cache as its readers see it (migrations 0007 and 0009): the cached lists and per-region
aggregates of the current generation, the legacy table names being views of it; and the
operator's invalidation. Generations are built and flipped in `cache_generations`.

The current generation is read here only (`CURRENT`, the database's
`current_cache_generation()`, and `CURRENT_ROW`). A flip and an invalidation take FLIP_LOCK,
so the two never race for `current`.
"""

from dataclasses import dataclass
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
# `stale`: docs/concepts.md, The cache), with its age in seconds; a subquery of the api's reads.
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

# With the generation's model version and age, whether an order of the customer reached
# the database, or was corrected or cancelled, after the row was written (the list does not
# know it), and the customer's region (the business rules scoped to a region need it: read
# here, it costs no second round trip).
USER_LIST = f"""
SELECT r.recommendations, r.updated_at, g.model_version, g.age_seconds,
       EXISTS (
           SELECT 1 FROM orders o
           WHERE o.customer_id = $1
             AND GREATEST(o.ingested_at, o.revised_at) > r.updated_at AT TIME ZONE 'UTC'
       ) AS outdated,
       (SELECT c.region FROM customers c WHERE c.customer_id = $1) AS region
FROM offline_user_recommendations r CROSS JOIN {CURRENT_ROW} g
WHERE r.user_id = $1
"""

SIMILAR_LIST = f"""
SELECT s.similar_products, s.updated_at, g.age_seconds, g.model_version
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


async def user_list(pool: asyncpg.Pool | asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    """The customer's cached list with its generation's model version and age (USER_LIST)."""
    row: asyncpg.Record | None = await pool.fetchrow(USER_LIST, user_id)
    return row


async def similar_list(pool: asyncpg.Pool, product_id: str) -> asyncpg.Record | None:
    """The product's cached similar items with its generation's age and model version
    (SIMILAR_LIST)."""
    row: asyncpg.Record | None = await pool.fetchrow(SIMILAR_LIST, product_id)
    return row


async def sampled_lists(
    pool: asyncpg.Pool, user_ids: list[str], limit: int, categories: list[str] | None
) -> list[asyncpg.Record]:
    """Per product: sampled users with it in their cached list, and its mean score."""
    return list(await pool.fetch(SAMPLED_LISTS, user_ids, limit, categories))


async def region_generation(
    pool: asyncpg.Pool | asyncpg.Connection, region: str
) -> asyncpg.Record | None:
    """The current generation with its age and the region's active customers in it."""
    row: asyncpg.Record | None = await pool.fetchrow(REGION_GENERATION, region)
    return row


async def region_exact(
    pool: asyncpg.Pool, generation: int, region: str, limit: int, categories: list[str] | None
) -> list[asyncpg.Record]:
    """The batch's per-product counts of one region in `generation`, best first."""
    return list(await pool.fetch(REGION_EXACT, region, limit, categories, generation))


# --- invalidation ---------------------------------------------------------------------------


def rows_affected(status: str) -> int:
    """Rows affected, from a command tag like `DELETE 3`."""
    return int(status.rsplit(" ", 1)[-1])


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
        return Invalidated(current, rows_affected(status), 0)


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
