"""Products (`products`): the catalogue, as the orders named it.

The tracker's batch writer (`mgrecs.store.orders.write_orders`) keeps it current from the
orders; `insert_products` writes known rows as they are (fixtures, backfills).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from mgrecs.store.csv_copy import copy_csv
from mgrecs.store.model_versions import ACTIVE_OF


@dataclass(frozen=True)
class StoredProduct:
    """A product as stored."""

    product_id: str
    name: str | None = None
    category: str | None = None
    price: float | None = None


INSERT = """
INSERT INTO products (product_id, name, category, price) VALUES ($1, $2, $3, $4)
ON CONFLICT (product_id) DO NOTHING
"""


async def insert_products(pool: asyncpg.Pool, products: Sequence[StoredProduct]) -> None:
    """Insert products not stored yet (a known id is left as it is)."""
    await pool.executemany(INSERT, [(p.product_id, p.name, p.category, p.price) for p in products])


CATALOGUE = """
SELECT product_id, name, category, price, active FROM products ORDER BY product_id
"""


async def catalogue(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """(product_id, name, category, price, active) of every product, bought or not."""
    rows: list[asyncpg.Record] = await pool.fetch(CATALOGUE)
    return rows


PRODUCT_EXISTS = "SELECT EXISTS (SELECT 1 FROM products WHERE product_id = $1)"


async def product_exists(pool: asyncpg.Pool, product_id: str) -> bool:
    """Whether the catalogue knows `product_id`."""
    return bool(await pool.fetchval(PRODUCT_EXISTS, product_id))


# Which of these products ($1) are in one of these categories ($2).
IN_CATEGORIES = """
SELECT product_id FROM products
WHERE product_id = ANY($1::text[]) AND category = ANY($2::text[])
"""


async def in_categories(
    pool: asyncpg.Pool, product_ids: list[str], categories: list[str]
) -> set[str]:
    """The products among `product_ids` whose category is one of `categories`."""
    rows = await pool.fetch(IN_CATEGORIES, product_ids, categories)
    return {row["product_id"] for row in rows}


ITEMS_CSV = """
SELECT product_id AS "ITEM_ID", category AS "CATEGORY", price AS "PRICE"
FROM products ORDER BY product_id"""
"""The Personalize items dataset's columns."""


async def export_items(pool: asyncpg.Pool, output: Path) -> int:
    """Every product as a Personalize item, CSV at `output`; how many."""
    return await copy_csv(pool, ITEMS_CSV, output)


# "New" products (docs/concepts.md, New products): launched after the active model of
# lineage $2 was trained (before any: within the last $3 days before $4, the request time),
# and not after $4; on sale and in stock. `buyers`: distinct customers since launch.
NEW_SINCE = f"""
since AS (
    SELECT coalesce(
        (SELECT max(trained_at) FROM model_versions WHERE {ACTIVE_OF.format(recipe="$2")}),
        $4::timestamptz - make_interval(days => $3::int)
    ) AS t
),
new AS (
    SELECT p.product_id, p.category, p.attributes,
           extract(epoch FROM p.launched_at)::float8 AS launched_at
    FROM products p
    WHERE p.launched_at > (SELECT t FROM since) AND p.launched_at <= $4::timestamptz
      AND p.active AND p.in_stock
)"""

# The new products in the categories of customer $1's purchases (of the categories $5 when
# given), not bought by them, with the customer's `weight` of their category (products
# bought in it); the best $6 by the order of `new_items.new_for_customer`.
NEW_FOR_CUSTOMER = f"""
WITH {NEW_SINCE},
bought AS (
    SELECT DISTINCT oi.product_id
    FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.customer_id = $1
),
weights AS (
    SELECT p.category, count(*)::int AS weight
    FROM bought b JOIN products p ON p.product_id = b.product_id
    WHERE p.category IS NOT NULL
    GROUP BY p.category
),
candidates AS (
    SELECT n.*, w.weight,
           (SELECT count(DISTINCT o.customer_id) FROM order_items oi
            JOIN orders o ON o.order_id = oi.order_id
            WHERE oi.product_id = n.product_id)::int AS buyers
    FROM new n JOIN weights w ON w.category = n.category
    WHERE ($5::text[] IS NULL OR n.category = ANY($5::text[]))
      AND n.product_id NOT IN (SELECT product_id FROM bought)
)
SELECT product_id, category, attributes, launched_at, weight, buyers, 0 AS bought_with
FROM candidates
ORDER BY weight DESC, buyers DESC, launched_at DESC, product_id
LIMIT $6
"""

# The new products like product $1: bought together with it (`bought_with`: orders holding
# both) or of its category; with its category and attributes (`of_category`,
# `of_attributes`, on every row). At most $5, those bought with it and of its category first.
# Counted from the new products' own lines (few: they are new), never from $1's (a best
# seller has thousands).
NEW_LIKE = f"""
WITH {NEW_SINCE},
asked AS (SELECT category, attributes FROM products WHERE product_id = $1),
new_lines AS (
    SELECT oi.product_id, oi.order_id, o.customer_id
    FROM new n
    JOIN order_items oi ON oi.product_id = n.product_id
    JOIN orders o ON o.order_id = oi.order_id
    WHERE n.product_id <> $1
),
counts AS (
    SELECT l.product_id,
           count(DISTINCT l.customer_id)::int AS buyers,
           (count(DISTINCT l.order_id) FILTER (WHERE EXISTS (
               SELECT 1 FROM order_items b WHERE b.order_id = l.order_id AND b.product_id = $1
           )))::int AS bought_with
    FROM new_lines l
    GROUP BY l.product_id
)
SELECT n.product_id, n.category, n.attributes, n.launched_at,
       coalesce(c.buyers, 0) AS buyers, coalesce(c.bought_with, 0) AS bought_with,
       0 AS weight, a.category AS of_category, a.attributes AS of_attributes
FROM new n
CROSS JOIN asked a
LEFT JOIN counts c ON c.product_id = n.product_id
WHERE n.product_id <> $1 AND (coalesce(c.bought_with, 0) > 0 OR n.category = a.category)
ORDER BY bought_with DESC, buyers DESC, n.launched_at DESC, n.product_id
LIMIT $5
"""


async def new_for_customer(
    pool: asyncpg.Pool,
    customer_id: str,
    recipe: str,
    max_days: int,
    now: datetime,
    categories: list[str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """(product_id, category, attributes, launched_at, weight, buyers, bought_with) of the
    new products in `customer_id`'s categories (see NEW_SINCE, NEW_FOR_CUSTOMER)."""
    rows: list[asyncpg.Record] = await pool.fetch(
        NEW_FOR_CUSTOMER, customer_id, recipe, max_days, now, categories, limit
    )
    return rows


async def new_like(
    pool: asyncpg.Pool, product_id: str, recipe: str, max_days: int, now: datetime, limit: int
) -> list[asyncpg.Record]:
    """(product_id, category, attributes, launched_at, buyers, bought_with, of_category,
    of_attributes) of the new products like `product_id` (see NEW_SINCE, NEW_LIKE)."""
    rows: list[asyncpg.Record] = await pool.fetch(
        NEW_LIKE, product_id, recipe, max_days, now, limit
    )
    return rows
