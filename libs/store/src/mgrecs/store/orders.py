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
changes them (`summarise`): a new order adds one to each of its products' counts; a replaced
version's (customer, product) pairs, the old customer's for the lines it loses and the new
one's, are recomputed from `orders` and `order_items`. Under a lock per customer, so that a
recomputation never misses the lines of another writer's transaction.
"""

from collections.abc import Collection, Iterable, Sequence
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
# (its old lines go) from a new one; `was_customer` is the replaced version's customer,
# whose purchases lose its lines: taken in `SET`, which sees the row as locked, also when
# another writer committed it while this statement waited (migration 0020).
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
    revised_at = now(),
    replaced_customer_id = o.customer_id
WHERE (EXCLUDED.updated_at, EXCLUDED.content_hash)
    > (COALESCE(o.updated_at, o.ordered_at), o.content_hash)
RETURNING order_id, revised_at IS NOT NULL AS revised, replaced_customer_id AS was_customer
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

ADD_ORDERS = """
INSERT INTO customer_products AS cp (customer_id, product_id, orders, last_ordered_at)
SELECT customer_id, product_id, count(*), max(ordered_at)
FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[])
    AS n (customer_id, product_id, ordered_at)
GROUP BY customer_id, product_id
ORDER BY customer_id, product_id
ON CONFLICT (customer_id, product_id) DO UPDATE SET
    orders = cp.orders + EXCLUDED.orders,
    last_ordered_at = GREATEST(cp.last_ordered_at, EXCLUDED.last_ordered_at)
"""
"""New orders into `customer_products`: one row per (new order, product it holds) in the
arrays, added to the pair's figures (an order not stored before counted nowhere yet)."""

SUMMARISE = """
WITH touched AS (
    SELECT DISTINCT customer_id, product_id
    FROM unnest($1::varchar[], $2::varchar[]) AS t (customer_id, product_id)
),
bought AS (
    SELECT b.customer_id, l.product_id, count(DISTINCT o.order_id)::int AS orders,
           max(o.ordered_at) AS last_ordered_at
    FROM (SELECT DISTINCT customer_id FROM touched) b
    CROSS JOIN LATERAL (
        SELECT order_id, ordered_at FROM orders WHERE customer_id = b.customer_id OFFSET 0
    ) o
    CROSS JOIN LATERAL (
        SELECT product_id FROM order_items WHERE order_id = o.order_id OFFSET 0
    ) l
    GROUP BY b.customer_id, l.product_id
),
fresh AS (
    SELECT t.customer_id, t.product_id, b.orders, b.last_ordered_at
    FROM touched t
    LEFT JOIN bought b ON b.customer_id = t.customer_id AND b.product_id = t.product_id
),
gone AS (
    DELETE FROM customer_products cp USING fresh f
    WHERE f.orders IS NULL AND cp.customer_id = f.customer_id AND cp.product_id = f.product_id
)
INSERT INTO customer_products AS cp (customer_id, product_id, orders, last_ordered_at)
SELECT customer_id, product_id, orders, last_ordered_at FROM fresh WHERE orders IS NOT NULL
ORDER BY customer_id, product_id
ON CONFLICT (customer_id, product_id) DO UPDATE SET
    orders = EXCLUDED.orders, last_ordered_at = EXCLUDED.last_ordered_at
WHERE (cp.orders, cp.last_ordered_at) IS DISTINCT FROM (EXCLUDED.orders, EXCLUDED.last_ordered_at)
"""
"""`customer_products` of the pairs ($1[i], $2[i]) recomputed from `orders` and `order_items`:
in how many of the customer's orders the product is, the last one's time (a pair bought no
more leaves). Each customer's orders are read once for all their pairs, each order's lines
by key (`LATERAL ... OFFSET 0` keeps them index probes: never a scan or a hash of a popular
product's lines)."""


async def summarise(
    conn: asyncpg.Connection,
    new_lines: Iterable[tuple[str, str, str, datetime]],
    changed: Collection[tuple[str, str]],
) -> None:
    """Bring `customer_products` up to date with this transaction's order writes: the
    `new_lines` (order, customer, product, ordered_at) of orders it created are added to
    their pairs' figures; the (customer, product) pairs in `changed` (lines replaced or
    removed) are recomputed from the order tables, their new orders' lines included. Under
    the customers' locks, taken after the lines were written."""
    added = {line for line in new_lines if line[1:3] not in changed}  # an order's product once
    customers = {line[1] for line in added} | {customer for customer, _ in changed}
    if not customers:
        return
    await conn.execute(LOCK_CUSTOMERS, sorted(customers))
    if added:
        _, buyers, products, times = zip(*added, strict=True)  # ADD_ORDERS sorts its rows
        await conn.execute(ADD_ORDERS, buyers, products, times)
    if changed:
        # Recomputing a large batch's corrections passes the JIT's cost threshold; compiling
        # would cost more than the probes it speeds up.
        await conn.execute("SET LOCAL jit = off")
        pairs = sorted(changed)
        await conn.execute(SUMMARISE, [c for c, _ in pairs], [p for _, p in pairs])


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
        changed: set[tuple[str, str]] = set()
        if was:
            removed = await conn.fetch(DELETE_REPLACED_ITEMS, list(was))
            changed.update((was[row["order_id"]], row["product_id"]) for row in removed)
        await conn.execute(INSERT_ITEMS, [row["order_id"] for row in written])
        stored = {row["order_id"] for row in written}
        placed = {o.order_id: (o.customer.customer_id, o.ordered_at) for o, _ in versions}
        new_lines: list[tuple[str, str, str, datetime]] = []
        for order_id, _, product_id, _, _ in item_rows:
            if order_id in was:
                changed.add((placed[order_id][0], product_id))
            elif order_id in stored:
                new_lines.append((order_id, placed[order_id][0], product_id, placed[order_id][1]))
        await summarise(conn, new_lines, changed)


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
        new_lines = [
            (o.order_id, o.customer_id, line.product_id, o.ordered_at)
            for o in orders
            for line in o.lines
        ]
        await summarise(conn, new_lines, ())
