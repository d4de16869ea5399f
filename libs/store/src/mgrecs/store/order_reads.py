"""Every read of order lines (`orders`, `order_items`; `mgrecs.store.orders` writes them):
the training set and the data-quality check, the Personalize export, the purchase histories
and revisions the sharded infer needs, the api's popularity counts and the drift report's.

`order_items` holds only the lines that count (a cancelled or returned order has none), so
every read here sees purchases only.
"""

from collections.abc import AsyncGenerator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.store.csv_copy import copy_csv


async def _in_batches(
    pool: asyncpg.Pool, query: str, rows: int, *args: Any
) -> AsyncGenerator[list[asyncpg.Record], None]:
    """`query`'s rows, `rows` per round trip, from a cursor in one transaction (close it with
    `contextlib.aclosing`, so a reader that stops early gives the connection back at once)."""
    async with pool.acquire() as conn, conn.transaction():
        cursor = await conn.cursor(query, *args)
        while batch := await cursor.fetch(rows):
            yield batch


# An order's own region wins; the customer's current region stands in when it has none.
# The time as whole epoch microseconds: exact, and divided by 10**6 it is the float
# datetime.timestamp() gives.
INTERACTIONS = """
SELECT o.customer_id, oi.product_id, oi.quantity,
       (extract(epoch FROM o.ordered_at) * 1000000)::bigint AS micros,
       COALESCE(o.region, c.region) AS region
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
JOIN customers c ON c.customer_id = o.customer_id
"""


def interactions(pool: asyncpg.Pool, rows: int) -> AsyncGenerator[list[asyncpg.Record], None]:
    """Every purchased line as (customer, product, quantity, epoch micros, region), `rows` at a
    time (the training set)."""
    return _in_batches(pool, INTERACTIONS, rows)


# Lines of one order are consecutive (the quality check counts a customer's orders so).
ORDER_LINES = """
SELECT o.order_id, o.customer_id, oi.product_id, oi.quantity, oi.price::float8
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
ORDER BY o.order_id, oi.line_no
"""


def order_lines(pool: asyncpg.Pool, rows: int) -> AsyncGenerator[list[asyncpg.Record], None]:
    """Every line as (order, customer, product, quantity, price), an order's lines together,
    `rows` at a time (the data-quality check)."""
    return _in_batches(pool, ORDER_LINES, rows)


INTERACTIONS_CSV = """
SELECT o.customer_id AS "USER_ID", oi.product_id AS "ITEM_ID",
       floor(extract(epoch FROM o.ordered_at))::bigint AS "TIMESTAMP",
       'purchase' AS "EVENT_TYPE", oi.quantity::float8 AS "EVENT_VALUE"
FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
WHERE ($1::timestamptz IS NULL OR o.ingested_at > $1)
  AND ($2::timestamptz IS NULL OR o.ingested_at <= $2)
ORDER BY o.ordered_at, o.order_id, oi.line_no"""
"""The Personalize interactions dataset's columns (the quantity is the EVENT_VALUE), of the
orders ingested after $1 and by $2 (either NULL: no bound)."""


async def export_interactions(
    pool: asyncpg.Pool,
    output: Path,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Every line (of the orders ingested after `since` and by `until`) as a Personalize
    interaction, CSV at `output`; how many."""
    return await copy_csv(pool, INTERACTIONS_CSV, output, since, until)


async def database_now(pool: asyncpg.Pool) -> datetime:
    """The database's clock: an export's cut-off compares with `orders.ingested_at`, which
    that clock set."""
    now: datetime = await pool.fetchval("SELECT now()")
    return now


HISTORIES = """
SELECT c.customer_id, c.region, array_agg(DISTINCT oi.product_id) AS products
FROM customers c
JOIN orders o ON o.customer_id = c.customer_id
JOIN order_items oi ON oi.order_id = o.order_id
WHERE c.customer_id = ANY($1::text[])
GROUP BY c.customer_id, c.region
"""


async def purchase_histories(
    pool: asyncpg.Pool, customer_ids: list[str]
) -> dict[str, tuple[str | None, list[str]]]:
    """Region and distinct purchased products of each customer (absent: bought nothing)."""
    rows = await pool.fetch(HISTORIES, customer_ids)
    return {row["customer_id"]: (row["region"], sorted(row["products"])) for row in rows}


# Customers (of $2) with an order corrected, cancelled or returned since model version $1 was
# trained: what the model remembers of them is out of date.
REVISED_CUSTOMERS = """
SELECT DISTINCT o.customer_id FROM orders o
WHERE o.revised_at >= (SELECT trained_at FROM model_versions WHERE version = $1)
  AND o.customer_id = ANY($2::text[])
"""


async def revised_customers(
    pool: asyncpg.Pool, model_version: str, customer_ids: list[str]
) -> set[str]:
    """Those of `customer_ids` with an order revised since `model_version` was trained."""
    rows = await pool.fetch(REVISED_CUSTOMERS, model_version, customer_ids)
    return {row[0] for row in rows}


# Distinct recent buyers per product, in one region ($2) or everywhere ($2 NULL), of the
# categories $4 (any when NULL).
POPULAR = """
SELECT oi.product_id, count(DISTINCT o.customer_id) AS buyers
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
JOIN customers c ON c.customer_id = o.customer_id
WHERE o.ordered_at >= $1 AND ($2::text IS NULL OR c.region = $2)
  AND ($4::text[] IS NULL OR oi.product_id IN (
      SELECT product_id FROM products WHERE category = ANY($4::text[])
  ))
GROUP BY oi.product_id
ORDER BY buyers DESC, oi.product_id
LIMIT $3
"""


async def popular(
    pool: asyncpg.Pool,
    since: datetime,
    region: str | None,
    limit: int,
    categories: list[str] | None,
) -> list[asyncpg.Record]:
    """(product_id, buyers): the products with the most distinct buyers since `since`."""
    rows: list[asyncpg.Record] = await pool.fetch(POPULAR, since, region, limit, categories)
    return rows


# The region page without cached lists (docs/concepts.md, The cache): the products with the most
# distinct buyers since $2 among the region's ($1) customers, of the categories $4 (any when
# NULL), as region page lines (`users`: buyers; `mean_score`: buyers relative to the top),
# with the region's active customers (`population`, the rates' denominator).
REGION_POPULAR = """
SELECT oi.product_id, p.name AS product_name, p.category,
       (SELECT count(DISTINCT a.customer_id) FROM orders a
        JOIN customers ac ON ac.customer_id = a.customer_id
        WHERE ac.region = $1 AND a.ordered_at >= $2) AS population,
       count(DISTINCT o.customer_id) AS users,
       count(DISTINCT o.customer_id)::float8
           / max(count(DISTINCT o.customer_id)) OVER () AS mean_score
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN products p ON p.product_id = oi.product_id
WHERE c.region = $1 AND o.ordered_at >= $2
  AND ($4::text[] IS NULL OR p.category = ANY($4::text[]))
GROUP BY oi.product_id, p.name, p.category
ORDER BY users DESC, oi.product_id
LIMIT $3
"""


async def region_popular(
    pool: asyncpg.Pool, region: str, since: datetime, limit: int, categories: list[str] | None
) -> list[asyncpg.Record]:
    """(product_id, product_name, category, population, users, mean_score) of the region's
    best sellers since `since`."""
    rows: list[asyncpg.Record] = await pool.fetch(REGION_POPULAR, region, since, limit, categories)
    return rows


# A visitor's list (`mgrecs.engine.visitors`): per active product bought in region $1 (any
# when NULL) between $5 and $2, of the categories $6 (any when NULL), its distinct buyers
# since $3 (`buyers`), since $4 (`recent`: the trending window) and from $5 to $4
# (`baseline`); the $7 most bought, and any other with at least $8 recent buyers (a
# trending candidate); `has_past`: any line in the baseline period at all.
REGION_ACTIVITY = """
WITH lines AS (
    SELECT oi.product_id, o.customer_id, o.ordered_at
    FROM order_items oi
    JOIN orders o ON o.order_id = oi.order_id
    JOIN customers c ON c.customer_id = o.customer_id
    JOIN products p ON p.product_id = oi.product_id
    WHERE o.ordered_at >= least($3::timestamptz, $5::timestamptz)
      AND o.ordered_at <= $2::timestamptz
      AND ($1::text IS NULL OR c.region = $1)
      AND p.active
      AND ($6::text[] IS NULL OR p.category = ANY($6::text[]))
),
counts AS (
    SELECT product_id,
           count(DISTINCT customer_id) FILTER (WHERE ordered_at >= $3) AS buyers,
           count(DISTINCT customer_id) FILTER (WHERE ordered_at >= $4) AS recent,
           count(DISTINCT customer_id)
               FILTER (WHERE ordered_at >= $5 AND ordered_at < $4) AS baseline
    FROM lines
    GROUP BY product_id
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY buyers DESC, product_id) AS place FROM counts
)
SELECT product_id, buyers::int, recent::int, baseline::int,
       EXISTS (SELECT 1 FROM lines WHERE ordered_at >= $5 AND ordered_at < $4) AS has_past
FROM ranked
WHERE place <= $7 OR recent >= $8
ORDER BY place
"""


async def region_activity(
    pool: asyncpg.Pool,
    region: str | None,
    now: datetime,
    active_since: datetime,
    window_start: datetime,
    baseline_start: datetime,
    categories: list[str] | None,
    limit: int,
    min_recent: int,
) -> list[asyncpg.Record]:
    """(product_id, buyers, recent, baseline, has_past) rows of REGION_ACTIVITY."""
    rows: list[asyncpg.Record] = await pool.fetch(
        REGION_ACTIVITY,
        region,
        now,
        active_since,
        window_start,
        baseline_start,
        categories,
        limit,
        min_recent,
    )
    return rows


# Distinct buyers since $1 of each of these products ($2); products nobody bought are absent.
BUYERS_OF = """
SELECT oi.product_id, count(DISTINCT o.customer_id) AS buyers
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
WHERE o.ordered_at >= $1 AND oi.product_id = ANY($2::text[])
GROUP BY oi.product_id
"""


async def buyers_of(pool: asyncpg.Pool, since: datetime, product_ids: list[str]) -> dict[str, int]:
    """Distinct buyers since `since` per product of `product_ids` (absent: none)."""
    rows = await pool.fetch(BUYERS_OF, since, product_ids)
    return {row["product_id"]: row["buyers"] for row in rows}


# Drift: the lines placed after $1 (the active version's training), and how many of them are
# by customers, or of products, with no line before.
UNSEEN = """
WITH recent AS (
    SELECT o.customer_id, oi.product_id
    FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
    WHERE o.ordered_at > $1
)
SELECT count(*) AS lines,
       count(*) FILTER (WHERE known_customer.customer_id IS NULL) AS unseen_customer_lines,
       count(*) FILTER (WHERE known_product.product_id IS NULL) AS unseen_product_lines
FROM recent r
LEFT JOIN (SELECT DISTINCT customer_id FROM orders WHERE ordered_at <= $1) known_customer
       ON known_customer.customer_id = r.customer_id
LEFT JOIN (SELECT DISTINCT oi.product_id FROM order_items oi
           JOIN orders o ON o.order_id = oi.order_id WHERE o.ordered_at <= $1) known_product
       ON known_product.product_id = r.product_id
"""


async def unseen_lines(pool: asyncpg.Pool, since: datetime) -> asyncpg.Record:
    """(lines, unseen_customer_lines, unseen_product_lines) of the lines placed after `since`."""
    return await pool.fetchrow(UNSEEN, since)


# Drift: the share of lines of the $3 most bought products of the $2 days up to $1, in those
# days (`before`) and after $1 (`recent`); NULL when there were no lines.
TOP_SHARES = """
WITH lines AS (
    SELECT oi.product_id, o.ordered_at > $1 AS recent
    FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
    WHERE o.ordered_at > $1 - make_interval(days => $2)
),
top AS (
    SELECT product_id FROM lines WHERE NOT recent
    GROUP BY product_id ORDER BY count(*) DESC, product_id LIMIT $3
)
SELECT avg((top.product_id IS NOT NULL)::int) FILTER (WHERE NOT lines.recent) AS before,
       avg((top.product_id IS NOT NULL)::int) FILTER (WHERE lines.recent) AS recent
FROM lines LEFT JOIN top ON top.product_id = lines.product_id
"""


async def top_product_shares(
    pool: asyncpg.Pool, since: datetime, days: int, top: int
) -> asyncpg.Record:
    """(before, recent): the share of order lines the `top` products most bought in the `days`
    days up to `since` had then, and have had since."""
    return await pool.fetchrow(TOP_SHARES, since, days, top)


async def count_lines(pool: asyncpg.Pool) -> int:
    """How many order lines are stored."""
    count: int = await pool.fetchval("SELECT count(*) FROM order_items")
    return count
