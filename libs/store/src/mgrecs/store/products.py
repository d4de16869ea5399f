"""Products (`products`): the catalogue, from the company and as the orders named it.

The tracker writes the company's catalogue records (`write_catalogue`, topic `products`) and
creates the products orders name before the catalogue does (`mgrecs.store.orders.write_orders`,
which never clobbers the catalogue's fields); `insert_products` writes known rows as they are
(fixtures, backfills); `search_products` finds products by id or name, sold or not.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from mgrecs.common.catalogue import ProductEvent
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


CATALOGUE_COUNT = "SELECT count(*) FROM products WHERE source_updated_at IS NOT NULL"


async def count_catalogue(pool: asyncpg.Pool) -> int:
    """Products the company's catalogue has described (sold or not)."""
    return int(await pool.fetchval(CATALOGUE_COUNT))


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


_VERSIONED = "name, category, price, cost, in_stock, active, launched_at, attributes"


def _content(alias: str) -> str:
    """A hash of a row's catalogue fields: breaks ties of `source_updated_at` the same way
    whatever the arrival order."""
    columns = ", ".join(f"{alias}.{c}" for c in _VERSIONED.split(", "))
    return f"md5(ROW({columns})::text)"


WRITE_CATALOGUE = f"""
WITH incoming AS (
    SELECT DISTINCT ON (s.product_id) s.*
    FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[],
                $6::boolean[], $7::boolean[], $8::timestamptz[], $9::jsonb[], $10::timestamptz[])
        AS s (product_id, {_VERSIONED}, source_updated_at)
    ORDER BY s.product_id, s.source_updated_at DESC, {_content("s")} DESC
)
INSERT INTO products AS p (product_id, {_VERSIONED}, source_updated_at)
SELECT product_id, {_VERSIONED}, source_updated_at FROM incoming ORDER BY product_id
ON CONFLICT (product_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, p.name),
    category = COALESCE(EXCLUDED.category, p.category),
    price = COALESCE(EXCLUDED.price, p.price),
    cost = EXCLUDED.cost,
    in_stock = EXCLUDED.in_stock,
    active = EXCLUDED.active,
    launched_at = EXCLUDED.launched_at,
    attributes = EXCLUDED.attributes,
    source_updated_at = EXCLUDED.source_updated_at,
    updated_at = now()
WHERE p.source_updated_at IS NULL
    OR (EXCLUDED.source_updated_at, {_content("EXCLUDED")})
        > (p.source_updated_at, {_content("p")})
"""
"""One statement per batch (columns as arrays). A product twice in the batch is written in its
newest version; a stored product is replaced only by a newer version (`source_updated_at`,
then the content's hash on a tie), so replays and late older versions change nothing. A name,
category or price the record leaves empty keeps what the orders said."""


async def write_catalogue(pool: asyncpg.Pool, products: Sequence[ProductEvent]) -> None:
    """Write the catalogue records `products`, newest version per product wins."""
    columns: list[list[object]] = [[] for _ in range(10)]
    for product in products:
        row = (
            product.product_id,
            product.name,
            product.category,
            product.price,
            product.cost,
            product.in_stock,
            product.active,
            product.launched_at,
            product.attributes,  # the pool encodes JSON (mgrecs.common.db)
            product.updated_at,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await pool.execute(WRITE_CATALOGUE, *columns)


@dataclass(frozen=True)
class FoundProduct:
    """A product as the catalogue search shows it."""

    product_id: str
    name: str | None
    category: str | None
    price: float | None
    in_stock: bool
    active: bool
    launched_at: datetime | None
    attributes: dict[str, object]
    sold: bool
    """Whether any order counts it (a product that never sold is listed all the same)."""


MAX_SEARCH_RESULTS = 100

# $1: the text searched (NULL: any) as a LIKE pattern, escaped with backslashes (LIKE's
# default escape); $2: the exact id, listed first; $3: categories (NULL: any); $4: limit.
SEARCH = """
SELECT p.product_id, p.name, p.category, p.price::float8 AS price, p.in_stock, p.active,
       p.launched_at, p.attributes,
       EXISTS (SELECT 1 FROM order_items i WHERE i.product_id = p.product_id) AS sold
FROM products p
WHERE ($1::text IS NULL OR p.product_id ILIKE $1 OR p.name ILIKE $1)
  AND ($3::text[] IS NULL OR p.category = ANY($3::text[]))
ORDER BY p.product_id = $2 DESC, p.name NULLS LAST, p.product_id
LIMIT $4
"""


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere (its own % and _ taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_products(
    pool: asyncpg.Pool, query: str | None, categories: list[str] | None, limit: int
) -> list[FoundProduct]:
    """Products whose id or name contains `query` (any case; all when None), of one of
    `categories` (any when None): the exact id first, then by name."""
    text = query.strip() if query else None
    rows = await pool.fetch(
        SEARCH,
        _like(text) if text else None,
        text,
        categories,
        min(limit, MAX_SEARCH_RESULTS),
    )
    return [
        FoundProduct(
            product_id=row["product_id"],
            name=row["name"],
            category=row["category"],
            price=row["price"],
            in_stock=row["in_stock"],
            active=row["active"],
            launched_at=row["launched_at"],
            attributes=row["attributes"],
            sold=row["sold"],
        )
        for row in rows
    ]
