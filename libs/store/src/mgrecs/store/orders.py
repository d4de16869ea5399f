"""Orders and their lines (`orders`, `order_items`) and what each customer bought
(`customer_products`, migration 0019): the tracker's idempotent batch writer, the tests' plain
writer, and an order line's event id. Every read of the order tables is in
`mgrecs.store.order_reads`; `customer_products` is read by the buy-again list
(`mgrecs.store.repurchase`).

The batch writer: a batch is COPYed into temporary staging tables and merged from there with
`INSERT ... SELECT ... ON CONFLICT`: a handful of round trips per batch, whatever its size.
Orders are versioned (`OrderEvent.version`): the newest version of an order replaces the stored
order and all its lines; an older or the same version changes nothing. So the tables end up the
same whatever order the versions arrive in, and however they are batched. `order_items` holds
the lines that count (`OrderEvent.live_lines`): none for a cancelled or returned order, so
every reader here sees purchases only.

Customers and products are merged per batch (later non-null values win) and written sorted by
id, so two tracker replicas touching the same products lock them in the same order.

`customer_products` is a summary of the two order tables, kept exact in the transaction that
changes them: both writers recompute each (customer, product) pair whose lines they added or
removed (the replaced version's customer for the lines it loses) from `orders` and
`order_items`, under a lock per customer, so two writers of one customer's orders cannot each
miss the other's lines.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mgrecs.common.schemas import OrderEvent, OrderVersion


def line_event_id(order_id: str, line_no: int) -> str:
    """The event id of an order line, `<order_id>#<line_no>`: stable across replays, so the
    engine (or AWS) counts a line once however often the tracker forwards it."""
    return f"{order_id}#{line_no}"


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
are not even locked (every batch names the popular products again). Each staged row looks its
stored one up by key (`LATERAL ... LIMIT 1`, which the planner keeps as a loop over the
batch): a plain join let the planner hash the whole table once per batch, work that grew
with the table (bench/RESULTS.md, 2026-12-07, issue 18 item 4: tracker side)."""

UPSERT_CUSTOMERS = """
INSERT INTO customers AS c (customer_id, age, gender, city, region)
SELECT s.customer_id, s.age, s.gender, s.city, s.region
FROM stage_customers s LEFT JOIN LATERAL (
    SELECT * FROM customers WHERE customer_id = s.customer_id LIMIT 1) e ON true
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


def _order_fills(new: str, old: str) -> str:
    """Name, category and price as an order line leaves them: an order's value replaces
    the stored one until the catalogue has described the product (`source_updated_at` set);
    then the catalogue's values stay and an order only fills what it left empty."""
    return ", ".join(
        f"CASE WHEN {old}.source_updated_at IS NULL THEN COALESCE({new}.{c}, {old}.{c}) "
        f"ELSE COALESCE({old}.{c}, {new}.{c}) END"
        for c in ("name", "category", "price")
    )


UPSERT_PRODUCTS = f"""
INSERT INTO products AS p (product_id, name, category, price)
SELECT s.product_id, s.name, s.category, s.price
FROM stage_products s LEFT JOIN LATERAL (
    SELECT * FROM products WHERE product_id = s.product_id LIMIT 1) e ON true
WHERE e.product_id IS NULL
    OR (e.name, e.category, e.price) IS DISTINCT FROM ({_order_fills("s", "e")})
ORDER BY s.product_id
ON CONFLICT (product_id) DO UPDATE SET
    (name, category, price) = ROW({_order_fills("EXCLUDED", "p")}),
    updated_at = now()
WHERE (p.name, p.category, p.price) IS DISTINCT FROM ({_order_fills("EXCLUDED", "p")})
"""
"""Products the orders name: new ones are created from the order lines; the catalogue's
fields (`mgrecs.store.products.write_catalogue`) are never clobbered by an order."""

# New orders and newer versions go in; the rest (older or the same version) is left out
# of RETURNING, so their staged lines are not written (a stored `updated_at` NULL means
# `ordered_at`, see migration 0011). `revised_at` tells a replaced order
# (its old lines go) from a new one; `was_customer` is the replaced version's customer (a
# subquery sees the table as it was before the statement), whose purchases lose its lines.
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
RETURNING order_id, revised_at IS NOT NULL AS revised,
    CASE WHEN revised_at IS NOT NULL
         THEN (SELECT was.customer_id FROM orders was WHERE was.order_id = o.order_id) END
         AS was_customer
"""

DELETE_REPLACED_ITEMS = """
DELETE FROM order_items WHERE order_id = ANY($1::varchar[]) RETURNING order_id, product_id
"""

# A join, not `= ANY($1)`: that compares every staged line with every written order id.
INSERT_ITEMS = """
INSERT INTO order_items (order_id, line_no, product_id, quantity, price)
SELECT s.order_id, s.line_no, s.product_id, s.quantity, s.price
FROM stage_order_items s JOIN unnest($1::varchar[]) AS w (order_id) USING (order_id)
"""

LOCK_CUSTOMERS = """
SELECT pg_advisory_xact_lock(hashtextextended('mgrecs:customer-products:' || c, 0))
FROM unnest($1::varchar[]) AS c
"""
"""Held until commit, taken in the order given (sorted: no deadlock between writers); a
statement that runs after it sees what earlier holders committed."""

SUMMARISE = """
WITH touched AS (
    SELECT t.customer_id, t.product_id, b.orders, b.last_ordered_at
    FROM unnest($1::varchar[], $2::varchar[]) AS t (customer_id, product_id)
    CROSS JOIN LATERAL (
        SELECT count(DISTINCT o.order_id)::int AS orders, max(o.ordered_at) AS last_ordered_at
        FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
        WHERE o.customer_id = t.customer_id AND oi.product_id = t.product_id
    ) b
),
gone AS (
    DELETE FROM customer_products cp USING touched t
    WHERE t.orders = 0 AND cp.customer_id = t.customer_id AND cp.product_id = t.product_id
)
INSERT INTO customer_products AS cp (customer_id, product_id, orders, last_ordered_at)
SELECT customer_id, product_id, orders, last_ordered_at FROM touched WHERE orders > 0
ON CONFLICT (customer_id, product_id) DO UPDATE SET
    orders = EXCLUDED.orders, last_ordered_at = EXCLUDED.last_ordered_at
WHERE (cp.orders, cp.last_ordered_at) IS DISTINCT FROM (EXCLUDED.orders, EXCLUDED.last_ordered_at)
"""
"""`customer_products` of the pairs ($1[i], $2[i]) as `orders` and `order_items` now say: in
how many distinct orders, when last (a pair bought no more leaves). Each pair is an index
probe of the customer's orders and their lines, never a scan (`LATERAL`)."""


async def summarise(conn: asyncpg.Connection, pairs: Collection[tuple[str, str]]) -> None:
    """Recompute `customer_products` for the (customer, product) `pairs` whose lines this
    transaction changed, under their customers' locks."""
    if not pairs:
        return
    ordered = sorted(pairs)
    await conn.execute(LOCK_CUSTOMERS, sorted({customer for customer, _ in ordered}))
    await conn.execute(SUMMARISE, [c for c, _ in ordered], [p for _, p in ordered])


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
        was = {row["order_id"]: row["was_customer"] for row in written if row["revised"]}
        touched: set[tuple[str, str]] = set()
        if was:
            removed = await conn.fetch(DELETE_REPLACED_ITEMS, list(was))
            touched.update((was[row["order_id"]], row["product_id"]) for row in removed)
        written_ids = [row["order_id"] for row in written]
        await conn.execute(INSERT_ITEMS, written_ids)
        customer_of = {o.order_id: o.customer.customer_id for o, _ in versions}
        new_lines = set(written_ids)
        touched.update((customer_of[r[0]], r[2]) for r in item_rows if r[0] in new_lines)
        await summarise(conn, touched)


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
    tracker's versioned path is `write_orders`), with what their customers bought. Their
    customers must exist."""
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
        await summarise(
            conn, {(o.customer_id, line.product_id) for o in orders for line in o.lines}
        )
