"""Idempotent writes of orders to PostgreSQL: replaying a batch changes nothing.

A batch is COPYed into temporary staging tables and merged from there with
`INSERT ... SELECT ... ON CONFLICT`: a handful of round trips per batch, whatever its size.

Customers and products are merged per batch (later non-null values win) and written sorted by
id, so two tracker replicas touching the same products lock them in the same order.
"""

from collections.abc import Sequence
from typing import Any

import asyncpg

from mgrecs.common.schemas import OrderEvent

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_customers (
    customer_id VARCHAR(255), age INTEGER, gender VARCHAR(8), city VARCHAR(255),
    region VARCHAR(64)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_products (
    product_id VARCHAR(255), name VARCHAR(500), category VARCHAR(255),
    price NUMERIC(12, 2)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_orders (
    order_id VARCHAR(255), customer_id VARCHAR(255), ordered_at TIMESTAMPTZ,
    region VARCHAR(64)) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_order_items (
    order_id VARCHAR(255), line_no INTEGER, product_id VARCHAR(255), quantity INTEGER,
    price NUMERIC(12, 2)) ON COMMIT DELETE ROWS
"""
"""Per-connection staging tables: a batch is COPYed in (one round trip per table), then
merged with one statement per table; `ON COMMIT DELETE ROWS` empties them for the next.
A key twice in one batch: the first row wins, as it would across batches (DO NOTHING).
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

INSERT_ORDERS = """
INSERT INTO orders (order_id, customer_id, ordered_at, region)
SELECT order_id, customer_id, ordered_at, region FROM stage_orders
ON CONFLICT (order_id) DO NOTHING
"""

INSERT_ITEMS = """
INSERT INTO order_items (order_id, line_no, product_id, quantity, price)
SELECT order_id, line_no, product_id, quantity, price FROM stage_order_items
ON CONFLICT (order_id, line_no) DO NOTHING
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


async def write_orders(pool: asyncpg.Pool, orders: Sequence[OrderEvent]) -> None:
    """Write `orders` with their customers, products and lines in one transaction."""
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
    order_rows = [
        (o.order_id, o.customer.customer_id, o.ordered_at, o.customer.region) for o in orders
    ]
    item_rows = [
        (o.order_id, line_no, line.product_id, line.quantity, line.price)
        for o in orders
        for line_no, line in enumerate(o.lines, start=1)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(STAGING)
        await conn.copy_records_to_table(
            "stage_customers", records=[customers[k] for k in sorted(customers)]
        )
        await conn.copy_records_to_table(
            "stage_products", records=[products[k] for k in sorted(products)]
        )
        await conn.copy_records_to_table("stage_orders", records=order_rows)
        await conn.copy_records_to_table("stage_order_items", records=item_rows)
        await conn.execute(UPSERT_CUSTOMERS)
        await conn.execute(UPSERT_PRODUCTS)
        await conn.execute(INSERT_ORDERS)
        await conn.execute(INSERT_ITEMS)
