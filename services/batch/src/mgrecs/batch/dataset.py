"""What the jobs read from PostgreSQL: purchases as engine interactions, the product
catalogue, active customers.

Purchases are the rows of `order_items`: the tracker keeps there only the lines that count
(cancelled and returned ones are not there, mgrecs.tracker.store)."""

from datetime import datetime

import asyncpg

from mgrecs.common.quality import QualityReport
from mgrecs.common.quality_checks import QualityAccumulator
from mgrecs.engine.dataset import Lines, LinesBuilder
from mgrecs.engine.records import ProductInfo

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

PRODUCTS = """
SELECT product_id, name, category, price, active FROM products ORDER BY product_id
"""

# Lines of one order are consecutive (the quality check counts a customer's orders so).
ORDER_LINES = """
SELECT o.order_id, o.customer_id, oi.product_id, oi.quantity, oi.price::float8
FROM order_items oi
JOIN orders o ON o.order_id = oi.order_id
ORDER BY o.order_id, oi.line_no
"""

# With their current region (None when unknown), for the per-region aggregates.
ACTIVE_CUSTOMER_REGIONS = """
SELECT c.customer_id, c.region FROM customers c
WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= $1)
ORDER BY c.customer_id
"""

HISTORIES = """
SELECT c.customer_id, c.region, array_agg(DISTINCT oi.product_id) AS products
FROM customers c
JOIN orders o ON o.customer_id = c.customer_id
JOIN order_items oi ON oi.order_id = o.order_id
WHERE c.customer_id = ANY($1::text[])
GROUP BY c.customer_id, c.region
"""

# Customers (of $2) with an order corrected, cancelled or returned since model version $1 was
# trained: what the model remembers of them is out of date.
REVISED_CUSTOMERS = """
SELECT DISTINCT o.customer_id FROM orders o
WHERE o.revised_at >= (SELECT trained_at FROM model_versions WHERE version = $1)
  AND o.customer_id = ANY($2::text[])
"""


FETCH_ROWS = 100_000
"""Order lines read per round trip while loading the training set."""


async def load_lines(pool: asyncpg.Pool) -> Lines:
    """Every purchased order line (the model's whole training set) in columns, read in
    pieces: 10M lines as fetched records or Interaction objects would take GiBs at once."""
    builder = LinesBuilder()
    async with pool.acquire() as conn, conn.transaction():
        cursor = await conn.cursor(INTERACTIONS)
        while rows := await cursor.fetch(FETCH_ROWS):
            builder.add(
                [row[0] for row in rows],
                [row[1] for row in rows],
                (row[2] for row in rows),
                (row[3] / 1_000_000 for row in rows),
                [row[4] for row in rows],
            )
    return builder.build()


async def check_order_lines(
    pool: asyncpg.Pool, max_bad_rate: float, catalogue: list[str]
) -> QualityReport:
    """The data-quality report of every order line the model would be trained on."""
    accumulator = QualityAccumulator()
    async with pool.acquire() as conn, conn.transaction():
        cursor = await conn.cursor(ORDER_LINES)
        while rows := await cursor.fetch(FETCH_ROWS):
            accumulator.add_lines(*(list(column) for column in zip(*rows, strict=True)))
    return accumulator.report("retrain", "export", max_bad_rate, catalogue)


async def load_products(pool: asyncpg.Pool) -> list[ProductInfo]:
    """Every catalogue product, bought or not (for the content back-off and the rules)."""
    rows = await pool.fetch(PRODUCTS)
    return [
        ProductInfo(
            row["product_id"],
            row["name"],
            row["category"],
            None if row["price"] is None else float(row["price"]),
            row["active"],
        )
        for row in rows
    ]


async def active_customer_regions(pool: asyncpg.Pool, since: datetime) -> dict[str, str | None]:
    """Customers with an order at or after `since` (the ones worth a cached list), each with
    their region."""
    rows = await pool.fetch(ACTIVE_CUSTOMER_REGIONS, since)
    return {row[0]: row[1] for row in rows}


async def purchase_histories(
    pool: asyncpg.Pool, customer_ids: list[str]
) -> dict[str, tuple[str | None, list[str]]]:
    """Region and distinct purchased products of each customer (for ones the model lacks)."""
    rows = await pool.fetch(HISTORIES, customer_ids)
    return {row["customer_id"]: (row["region"], sorted(row["products"])) for row in rows}


async def revised_customers(
    pool: asyncpg.Pool, model_version: str, customer_ids: list[str]
) -> set[str]:
    """Those of `customer_ids` with an order revised since `model_version` was trained."""
    rows = await pool.fetch(REVISED_CUSTOMERS, model_version, customer_ids)
    return {row[0] for row in rows}
