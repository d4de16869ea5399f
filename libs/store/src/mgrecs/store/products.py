"""Products (`products`): the catalogue, as the orders named it.

The tracker's batch writer (`mgrecs.store.orders.write_orders`) keeps it current from the
orders; `insert_products` writes known rows as they are (fixtures, backfills).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from mgrecs.store.csv_copy import copy_csv


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
