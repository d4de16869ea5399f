"""Orders and their lines (`orders`, `order_items`): the tracker's idempotent batch writer,
an order line's event id, and every read of order lines (training, export, the engine's
replay, the api's popularity counts).

The batch writer: a batch is COPYed into temporary staging tables and merged from there with
`INSERT ... SELECT ... ON CONFLICT`: a handful of round trips per batch, whatever its size.
Orders are versioned (`OrderEvent.version`): the newest version of an order replaces the stored
order and all its lines; an older or the same version changes nothing. So the tables end up the
same whatever order the versions arrive in, and however they are batched. `order_items` holds
the lines that count (`OrderEvent.live_lines`): none for a cancelled or returned order, so
every reader here sees purchases only.

Customers and products are merged per batch (later non-null values win) and written sorted by
id, so two tracker replicas touching the same products lock them in the same order.
"""

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.common.schemas import OrderEvent, OrderVersion
from mgrecs.store.csv_copy import copy_csv


def line_event_id(order_id: str, line_no: int) -> str:
    """The event id of an order line, `<order_id>#<line_no>`: stable across replays, so the
    engine (or AWS) counts a line once however often the tracker forwards it."""
    return f"{order_id}#{line_no}"


LINE_EVENT_ID = "o.order_id || '#' || oi.line_no"
"""`line_event_id` in SQL, over `orders o` and `order_items oi`."""

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_customers (
    customer_id VARCHAR(255), age INTEGER, gender VARCHAR(8), city VARCHAR(255),
    region VARCHAR(64)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_products (
    product_id VARCHAR(255), name VARCHAR(500), category VARCHAR(255),
    price NUMERIC(12, 2)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_order_versions (
    order_id VARCHAR(255), customer_id VARCHAR(255), ordered_at TIMESTAMPTZ,
    region VARCHAR(64), status VARCHAR(16), updated_at TIMESTAMPTZ,
    content_hash VARCHAR(64) COLLATE "C") ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_order_items (
    order_id VARCHAR(255), line_no INTEGER, product_id VARCHAR(255), quantity INTEGER,
    price NUMERIC(12, 2)) ON COMMIT DELETE ROWS
"""
"""Per-connection staging tables: a batch is COPYed in (one round trip per table), then
merged with one statement per table; `ON COMMIT DELETE ROWS` empties them for the next.
An order twice in one batch is staged once, in its newest version.
Customers and products the batch would not change are left out before the upsert, so they
are not even locked (every batch names the popular products again)."""

UPSERT_CUSTOMERS = """
INSERT INTO customers AS c (customer_id, age, gender, city, region)
SELECT s.customer_id, s.age, s.gender, s.city, s.region
FROM stage_customers s LEFT JOIN customers e USING (customer_id)
WHERE e.customer_id IS NULL OR (e.age, e.gender, e.city, e.region) IS DISTINCT FROM (
    COALESCE(s.age, e.age), COALESCE(s.gender, e.gender), COALESCE(s.city, e.city),
    COALESCE(s.region, e.region))
ORDER BY s.customer_id
ON CONFLICT (customer_id) DO UPDATE SET
    age = COALESCE(EXCLUDED.age, c.age),
    gender = COALESCE(EXCLUDED.gender, c.gender),
    city = COALESCE(EXCLUDED.city, c.city),
    region = COALESCE(EXCLUDED.region, c.region),
    updated_at = now()
WHERE (c.age, c.gender, c.city, c.region) IS DISTINCT FROM (
    COALESCE(EXCLUDED.age, c.age), COALESCE(EXCLUDED.gender, c.gender),
    COALESCE(EXCLUDED.city, c.city), COALESCE(EXCLUDED.region, c.region))
"""

UPSERT_PRODUCTS = """
INSERT INTO products AS p (product_id, name, category, price)
SELECT s.product_id, s.name, s.category, s.price
FROM stage_products s LEFT JOIN products e USING (product_id)
WHERE e.product_id IS NULL OR (e.name, e.category, e.price) IS DISTINCT FROM (
    COALESCE(s.name, e.name), COALESCE(s.category, e.category), COALESCE(s.price, e.price))
ORDER BY s.product_id
ON CONFLICT (product_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, p.name),
    category = COALESCE(EXCLUDED.category, p.category),
    price = COALESCE(EXCLUDED.price, p.price),
    updated_at = now()
WHERE (p.name, p.category, p.price) IS DISTINCT FROM (
    COALESCE(EXCLUDED.name, p.name), COALESCE(EXCLUDED.category, p.category),
    COALESCE(EXCLUDED.price, p.price))
"""

# New orders and newer versions go in; the rest (older or the same version) is left out
# of RETURNING, so their staged lines are not written (a stored `updated_at` NULL means
# `ordered_at`, see migration 0011). `revised_at` tells a replaced order
# (its old lines go) from a new one.
UPSERT_ORDERS = """
INSERT INTO orders AS o (
    order_id, customer_id, ordered_at, region, status, updated_at, content_hash)
SELECT order_id, customer_id, ordered_at, region, status, updated_at, content_hash
FROM stage_order_versions
ORDER BY order_id
ON CONFLICT (order_id) DO UPDATE SET
    customer_id = EXCLUDED.customer_id,
    ordered_at = EXCLUDED.ordered_at,
    region = EXCLUDED.region,
    status = EXCLUDED.status,
    updated_at = EXCLUDED.updated_at,
    content_hash = EXCLUDED.content_hash,
    revised_at = now()
WHERE (EXCLUDED.updated_at, EXCLUDED.content_hash)
    > (COALESCE(o.updated_at, o.ordered_at), o.content_hash)
RETURNING order_id, revised_at IS NOT NULL AS revised
"""

DELETE_REPLACED_ITEMS = "DELETE FROM order_items WHERE order_id = ANY($1::varchar[])"

# A join, not `= ANY($1)`: that compares every staged line with every written order id.
INSERT_ITEMS = """
INSERT INTO order_items (order_id, line_no, product_id, quantity, price)
SELECT s.order_id, s.line_no, s.product_id, s.quantity, s.price
FROM stage_order_items s JOIN unnest($1::varchar[]) AS w (order_id) USING (order_id)
"""


def _merge(rows: dict[str, tuple[Any, ...]], key: str, values: tuple[Any, ...]) -> None:
    """Keep one row per key: a later non-null value replaces an earlier one."""
    earlier = rows.get(key)
    if earlier is None:
        rows[key] = values
    elif earlier != values:  # the popular products come again and again, mostly unchanged
        rows[key] = tuple(
            new if new is not None else old for new, old in zip(values, earlier, strict=True)
        )


def newest_versions(orders: Sequence[OrderEvent]) -> list[tuple[OrderEvent, OrderVersion]]:
    """Each order once, in its newest version among `orders`."""
    newest: dict[str, tuple[OrderEvent, OrderVersion]] = {}
    for order in orders:
        version = order.version
        known = newest.get(order.order_id)
        if known is None or version > known[1]:
            newest[order.order_id] = (order, version)
    return list(newest.values())


async def write_orders(pool: asyncpg.Pool, orders: Sequence[OrderEvent]) -> None:
    """Write `orders` with their customers, products and lines in one transaction; an order
    already stored in a newer or the same version is left as it is."""
    customers: dict[str, tuple[Any, ...]] = {}
    products: dict[str, tuple[Any, ...]] = {}
    for order in orders:
        c = order.customer
        _merge(customers, c.customer_id, (c.customer_id, c.age, c.gender, c.city, c.region))
        for line in order.lines:
            _merge(
                products,
                line.product_id,
                (line.product_id, line.product_name, line.category, line.price),
            )
    versions = newest_versions(orders)
    order_rows = [
        (
            o.order_id,
            o.customer.customer_id,
            o.ordered_at,
            o.customer.region,
            o.status,
            v.updated_at,
            v.content_hash,
        )
        for o, v in versions
    ]
    item_rows = [
        (o.order_id, line_no, line.product_id, line.quantity, line.price)
        for o, _ in versions
        for line_no, line in o.live_lines()
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(STAGING)
        await conn.copy_records_to_table(
            "stage_customers", records=[customers[k] for k in sorted(customers)]
        )
        await conn.copy_records_to_table(
            "stage_products", records=[products[k] for k in sorted(products)]
        )
        await conn.copy_records_to_table("stage_order_versions", records=order_rows)
        await conn.copy_records_to_table("stage_order_items", records=item_rows)
        await conn.execute(UPSERT_CUSTOMERS)
        await conn.execute(UPSERT_PRODUCTS)
        written = await conn.fetch(UPSERT_ORDERS)
        replaced = [row["order_id"] for row in written if row["revised"]]
        if replaced:
            await conn.execute(DELETE_REPLACED_ITEMS, replaced)
        await conn.execute(INSERT_ITEMS, [row["order_id"] for row in written])


@dataclass(frozen=True)
class StoredLine:
    """An order line as stored (`order_items`)."""

    line_no: int
    product_id: str
    quantity: int = 1
    price: float | None = 1.0


@dataclass(frozen=True)
class StoredOrder:
    """An order as stored (`orders`), with its lines; `ingested_at` None: now."""

    order_id: str
    customer_id: str
    ordered_at: datetime
    lines: Sequence[StoredLine] = ()
    region: str | None = None
    ingested_at: datetime | None = None


INSERT_ORDER = """
INSERT INTO orders (order_id, customer_id, ordered_at, region, ingested_at)
VALUES ($1, $2, $3, $4, COALESCE($5, now()))
"""

INSERT_LINE = """
INSERT INTO order_items (order_id, line_no, product_id, quantity, price)
VALUES ($1, $2, $3, $4, $5)
"""


async def insert_orders(pool: asyncpg.Pool, orders: Sequence[StoredOrder]) -> None:
    """Insert orders as they are, unversioned (fixtures and backfills of known rows; the
    tracker's versioned path is `write_orders`). Their customers must exist."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            INSERT_ORDER,
            [(o.order_id, o.customer_id, o.ordered_at, o.region, o.ingested_at) for o in orders],
        )
        await conn.executemany(
            INSERT_LINE,
            [
                (o.order_id, line.line_no, line.product_id, line.quantity, line.price)
                for o in orders
                for line in o.lines
            ],
        )


async def _in_batches(
    pool: asyncpg.Pool, query: str, rows: int, *args: Any
) -> AsyncGenerator[list[asyncpg.Record], None]:
    """`query`'s rows, `rows` per round trip, from a cursor in one transaction (close it with
    `contextlib.aclosing`, so a reader that stops early gives the connection back at once)."""
    async with pool.acquire() as conn, conn.transaction():
        cursor = await conn.cursor(query, *args)
        while batch := await cursor.fetch(rows):
            yield batch


# The engine's replay. The customer's region as the tracker reports it: the order's, else the
# customer's. An order without lines (cancelled or returned) comes as one row without a line,
# so its version is known and an older version sent later is ignored.
LINES_SINCE = f"""
SELECT o.customer_id, {LINE_EVENT_ID}, oi.product_id,
       COALESCE(o.region, c.region), o.order_id,
       COALESCE(o.updated_at, o.ordered_at), o.content_hash
FROM orders o
LEFT JOIN order_items oi ON oi.order_id = o.order_id
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.ingested_at >= $1 OR o.revised_at >= $1
ORDER BY o.ingested_at, o.order_id, oi.line_no
"""


def lines_since(
    pool: asyncpg.Pool, since: datetime, rows: int
) -> AsyncGenerator[list[asyncpg.Record], None]:
    """Order lines that reached the database (or were revised) at or after `since`, as
    (customer, event id, product, region, order, updated_at, content hash), `rows` at a time;
    an order without lines is one row with a NULL line."""
    return _in_batches(pool, LINES_SINCE, rows, since)


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
SELECT o.customer_id AS "USER_ID", oi.product_id AS "ITEM_ID", 'purchase' AS "EVENT_TYPE",
       floor(extract(epoch FROM o.ordered_at))::bigint AS "TIMESTAMP"
FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
ORDER BY o.ordered_at, o.order_id, oi.line_no"""
"""The Personalize interactions dataset's columns."""


async def export_interactions(pool: asyncpg.Pool, output: Path) -> int:
    """Every line as a Personalize interaction, CSV at `output`; how many."""
    return await copy_csv(pool, INTERACTIONS_CSV, output)


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
