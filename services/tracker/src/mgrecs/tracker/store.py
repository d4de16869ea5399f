"""Idempotent writes of orders to PostgreSQL: replaying a batch changes nothing.

Customers and products are merged per batch (later non-null values win) and written sorted by
id, so two tracker replicas touching the same products lock them in the same order.
"""

from collections.abc import Sequence
from typing import Any

import asyncpg

from mgrecs.common.schemas import OrderEvent

UPSERT_CUSTOMER = """
INSERT INTO customers AS c (customer_id, age, gender, city, region)
VALUES ($1, $2, $3, $4, $5)
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

UPSERT_PRODUCT = """
INSERT INTO products AS p (product_id, name, category, price)
VALUES ($1, $2, $3, $4)
ON CONFLICT (product_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, p.name),
    category = COALESCE(EXCLUDED.category, p.category),
    price = COALESCE(EXCLUDED.price, p.price),
    updated_at = now()
WHERE (p.name, p.category, p.price) IS DISTINCT FROM (
    COALESCE(EXCLUDED.name, p.name), COALESCE(EXCLUDED.category, p.category),
    COALESCE(EXCLUDED.price, p.price))
"""

INSERT_ORDER = """
INSERT INTO orders (order_id, customer_id, ordered_at, region) VALUES ($1, $2, $3, $4)
ON CONFLICT (order_id) DO NOTHING
"""

INSERT_ITEM = """
INSERT INTO order_items (order_id, line_no, product_id, quantity, price)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (order_id, line_no) DO NOTHING
"""


def _merge(rows: dict[str, tuple[Any, ...]], key: str, values: tuple[Any, ...]) -> None:
    """Keep one row per key: a later non-null value replaces an earlier one."""
    earlier = rows.get(key)
    if earlier is None:
        rows[key] = values
    else:
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
        await conn.executemany(UPSERT_CUSTOMER, [customers[k] for k in sorted(customers)])
        await conn.executemany(UPSERT_PRODUCT, [products[k] for k in sorted(products)])
        await conn.executemany(INSERT_ORDER, order_rows)
        await conn.executemany(INSERT_ITEM, item_rows)
