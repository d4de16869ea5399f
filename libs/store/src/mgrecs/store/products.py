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
from typing import Any

import asyncpg

from mgrecs.common.catalogue import ProductEvent
from mgrecs.store.cache import SIMILAR_LIST, USER_LIST
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


CATALOGUE_COUNT = "SELECT count(*) FROM products WHERE source_updated_at IS NOT NULL"


async def count_catalogue(pool: asyncpg.Pool) -> int:
    """Products the company's catalogue has described (sold or not)."""
    return int(await pool.fetchval(CATALOGUE_COUNT))


PRODUCT_NAMES = """
SELECT product_id, name FROM products
WHERE product_id = ANY($1::text[]) AND name IS NOT NULL AND name <> ''
"""


async def product_names(pool: asyncpg.Pool, product_ids: list[str]) -> dict[str, str]:
    """The catalogue names of those of `product_ids` that have one (one query)."""
    rows = await pool.fetch(PRODUCT_NAMES, product_ids)
    return {row["product_id"]: row["name"] for row in rows}


KNOWN_NAMES = """
SELECT product_id, nullif(name, '') AS name FROM products WHERE product_id = ANY($1::text[])
"""


async def known_names(pool: asyncpg.Pool, product_ids: list[str]) -> dict[str, str | None]:
    """Those of `product_ids` that are products, each with its catalogue name (None: it has
    none), in one query: an id missing from the answer is no product."""
    rows = await pool.fetch(KNOWN_NAMES, product_ids)
    return {row["product_id"]: row["name"] for row in rows}


PRODUCT_SOLD = """
SELECT EXISTS (SELECT 1 FROM order_items i WHERE i.product_id = p.product_id)
FROM products p WHERE p.product_id = $1
"""


async def product_sold(pool: asyncpg.Pool, product_id: str) -> bool | None:
    """Whether any order names `product_id`; None when the catalogue does not know it."""
    sold: bool | None = await pool.fetchval(PRODUCT_SOLD, product_id)
    return sold


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
SELECT product_id AS "ITEM_ID", name AS "PRODUCT_NAME", category AS "CATEGORY",
       price AS "PRICE"
FROM products ORDER BY product_id"""
"""The Personalize items dataset's columns."""


async def export_items(pool: asyncpg.Pool, output: Path) -> int:
    """Every product as a Personalize item, CSV at `output`; how many."""
    return await copy_csv(pool, ITEMS_CSV, output)


# Every new product (docs/concepts.md, New products): launched after the active model of
# lineage $1 was trained (before any: within the last $2 days before $3, the reader's time),
# on sale and in stock, with `buyers` (distinct customers since launch) and `trained_at`
# (epoch seconds of that training, null before any) on every row; launched after $3 too
# (the reader's memo applies the upper end, the request time, per request).
NEW_PRODUCTS = f"""
WITH trained AS (
    SELECT extract(epoch FROM max(trained_at))::float8 AS t
    FROM model_versions WHERE {ACTIVE_OF.format(recipe="$1")}
)
SELECT p.product_id, p.category, p.attributes,
       extract(epoch FROM p.launched_at)::float8 AS launched_at,
       (SELECT count(DISTINCT o.customer_id) FROM order_items oi
        JOIN orders o ON o.order_id = oi.order_id
        WHERE oi.product_id = p.product_id)::int AS buyers,
       0 AS bought_with, (SELECT t FROM trained) AS trained_at
FROM products p
WHERE p.launched_at > coalesce(
        to_timestamp((SELECT t FROM trained)), $3::timestamptz - make_interval(days => $2::int)
      )
  AND p.active AND p.in_stock
ORDER BY p.product_id
"""

NEW_PRODUCTS_TRAINED = f"""
SELECT extract(epoch FROM max(trained_at))::float8
FROM model_versions WHERE {ACTIVE_OF.format(recipe="$1")}
"""


async def new_products(
    pool: asyncpg.Pool, recipe: str, max_days: int, now: datetime
) -> tuple[list[asyncpg.Record], float | None]:
    """(product_id, category, attributes, launched_at, buyers, bought_with) of every new
    product (NEW_PRODUCTS), and when the active model of `recipe` was trained (epoch
    seconds; None before any), in one query."""
    rows: list[asyncpg.Record] = await pool.fetch(NEW_PRODUCTS, recipe, max_days, now)
    if rows:
        return rows, rows[0]["trained_at"]
    return rows, await pool.fetchval(NEW_PRODUCTS_TRAINED, recipe)


# Customer $1's weight of each of the categories $2 (distinct products bought in it; by
# category) and which of the products $3 they bought, in one row: what
# `new_items.new_for_customer` needs of them.
CUSTOMER_CATEGORIES = """
WITH bought AS (
    SELECT DISTINCT oi.product_id
    FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.customer_id = $1
),
counted AS (
    SELECT p.category, count(*)::int AS weight
    FROM bought b JOIN products p ON p.product_id = b.product_id
    WHERE p.category = ANY($2::text[])
    GROUP BY p.category
)
SELECT coalesce((SELECT array_agg(category ORDER BY category) FROM counted), '{}')
           AS new_categories,
       coalesce((SELECT array_agg(weight ORDER BY category) FROM counted), '{}') AS new_weights,
       coalesce((SELECT array_agg(product_id) FROM bought WHERE product_id = ANY($3::text[])),
                '{}') AS new_bought
"""

# The customer's cached list (cache.USER_LIST) and CUSTOMER_CATEGORIES in one round trip:
# the slot costs the cached list no query of its own.
USER_LIST_WITH_CATEGORIES = f"""
SELECT u.*, n.* FROM ({USER_LIST}) u CROSS JOIN LATERAL ({CUSTOMER_CATEGORIES}) n
"""


# Product $1's category and attributes and, per product of $2 (new products: the api keeps
# them in memory), the orders holding both it and $1, in one row (no row: $1 is not in the
# catalogue): what `new_items.new_like` needs beyond the new products themselves. The
# planner joins the new products' lines (few: they are new) with $1's: next to nothing for
# most products, a few ms for a best seller's thousands (bench/similar_new_items.py; probing
# each new line's order instead costs about 2 ms for every product, so it is not forced).
PRODUCT_LIKE_NEW = """
SELECT p.category AS of_category, p.attributes AS of_attributes,
       coalesce((
           SELECT jsonb_object_agg(c.product_id, c.orders) FROM (
               SELECT n.product_id, count(DISTINCT n.order_id)::int AS orders
               FROM order_items n
               JOIN order_items b ON b.order_id = n.order_id AND b.product_id = $1
               WHERE n.product_id = ANY($2::text[]) AND n.product_id <> $1
               GROUP BY n.product_id
           ) c
       ), '{}'::jsonb) AS new_bought_with
FROM products p
WHERE p.product_id = $1
"""

# The product's cached similar items (cache.SIMILAR_LIST) and PRODUCT_LIKE_NEW in one round
# trip (its columns null when the product is not in the catalogue): the new products cost
# the cached list no query of their own.
SIMILAR_LIST_LIKE_NEW = f"""
SELECT s.*, n.* FROM ({SIMILAR_LIST}) s LEFT JOIN LATERAL ({PRODUCT_LIKE_NEW}) n ON true
"""


@dataclass(frozen=True)
class ProductLikeNew:
    """A product's category and attributes, and how many orders hold both it and each of
    some new products (those never bought with it are left out)."""

    category: str | None
    attributes: dict[str, Any]
    bought_with: dict[str, int]


NOTHING_LIKE = ProductLikeNew(None, {}, {})
"""The part of a product the catalogue does not hold: no new product is like it."""


def product_like_new_part(row: asyncpg.Record) -> ProductLikeNew:
    """`ProductLikeNew` from a row with PRODUCT_LIKE_NEW's columns (null when the product is
    not in the catalogue: NOTHING_LIKE)."""
    if row["new_bought_with"] is None:
        return NOTHING_LIKE
    attributes = row["of_attributes"]
    return ProductLikeNew(
        row["of_category"],
        attributes if isinstance(attributes, dict) else {},
        dict(row["new_bought_with"]),
    )


async def product_like_new(
    pool: asyncpg.Pool, product_id: str, new_ids: list[str]
) -> ProductLikeNew:
    """`product_id`'s part of its similar items' new products (PRODUCT_LIKE_NEW), one
    query."""
    row = await pool.fetchrow(PRODUCT_LIKE_NEW, product_id, new_ids)
    return NOTHING_LIKE if row is None else product_like_new_part(row)


async def similar_list_like_new(
    pool: asyncpg.Pool, product_id: str, new_ids: list[str]
) -> asyncpg.Record | None:
    """The product's cached similar items with PRODUCT_LIKE_NEW's columns (None: no cached
    list)."""
    row: asyncpg.Record | None = await pool.fetchrow(SIMILAR_LIST_LIKE_NEW, product_id, new_ids)
    return row


@dataclass(frozen=True)
class CustomerCategories:
    """A customer's weight of some categories (distinct products bought in each; those they
    never bought in are left out) and which of some products they bought."""

    weights: dict[str, int]
    bought: frozenset[str]


def customer_part(row: asyncpg.Record) -> CustomerCategories:
    """`CustomerCategories` from a row with CUSTOMER_CATEGORIES' columns."""
    return CustomerCategories(
        dict(zip(row["new_categories"], row["new_weights"], strict=True)),
        frozenset(row["new_bought"]),
    )


async def customer_categories(
    pool: asyncpg.Pool, customer_id: str, categories: list[str], product_ids: list[str]
) -> CustomerCategories:
    """`customer_id`'s weight of each of `categories` and which of `product_ids` they
    bought (one query)."""
    row = await pool.fetchrow(CUSTOMER_CATEGORIES, customer_id, categories, product_ids)
    return customer_part(row)


async def user_list_with_categories(
    pool: asyncpg.Pool | asyncpg.Connection,
    customer_id: str,
    categories: list[str],
    product_ids: list[str],
) -> asyncpg.Record | None:
    """The customer's cached list with CUSTOMER_CATEGORIES' columns (None: no cached list)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        USER_LIST_WITH_CATEGORIES, customer_id, categories, product_ids
    )
    return row


# The catalogue's products like product $1 when no model knows it (docs/concepts.md, New
# products): on sale and in stock, bought together with it (`bought_with`: orders holding
# both, counted in its latest $3 orders only, so a best seller costs no more than a new
# product) or of its category, with `sold` (its order lines, an index-only count: no scan
# of the orders) and the asked product's category and attributes (`of_category`,
# `of_attributes`, on every row). The best $2 by the order of `content.catalogue_like`
# (attributes shared: same name, same value).
CATALOGUE_LIKE = """
WITH asked AS (SELECT category, attributes FROM products WHERE product_id = $1),
asked_orders AS (
    SELECT oi.order_id
    FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
    WHERE oi.product_id = $1
    ORDER BY o.ordered_at DESC
    LIMIT $3
),
together AS (
    SELECT oi.product_id, count(DISTINCT oi.order_id)::int AS bought_with
    FROM asked_orders a JOIN order_items oi ON oi.order_id = a.order_id
    WHERE oi.product_id <> $1
    GROUP BY oi.product_id
),
related AS (
    SELECT p.product_id FROM products p, asked a WHERE p.category = a.category
    UNION
    SELECT product_id FROM together
)
SELECT p.product_id, p.category, p.attributes, coalesce(t.bought_with, 0) AS bought_with,
       b.sold, a.category AS of_category, a.attributes AS of_attributes
FROM related r
JOIN products p ON p.product_id = r.product_id
CROSS JOIN asked a
LEFT JOIN together t ON t.product_id = p.product_id
CROSS JOIN LATERAL (
    SELECT count(*)::int AS sold FROM order_items oi WHERE oi.product_id = p.product_id
) b
WHERE p.product_id <> $1 AND p.active AND p.in_stock
ORDER BY bought_with DESC,
         (SELECT count(*) FROM jsonb_each(a.attributes) e WHERE p.attributes -> e.key = e.value)
             DESC,
         b.sold DESC, p.product_id
LIMIT $2
"""

LIKE_ORDERS = 200
"""The asked product's latest orders its co-purchases are counted in (`CATALOGUE_LIKE`)."""


async def catalogue_like(pool: asyncpg.Pool, product_id: str, limit: int) -> list[asyncpg.Record]:
    """(product_id, category, attributes, bought_with, sold, of_category, of_attributes)
    of the catalogue's products like `product_id` (see CATALOGUE_LIKE)."""
    rows: list[asyncpg.Record] = await pool.fetch(CATALOGUE_LIKE, product_id, limit, LIKE_ORDERS)
    return rows


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


MARGINS = """
SELECT product_id, (price - cost)::float8 AS margin
FROM products WHERE price IS NOT NULL AND cost IS NOT NULL
"""


async def margins(pool: asyncpg.Pool) -> dict[str, float]:
    """Per product of known price and cost, its margin (price - cost): what the api weighs
    against relevance when `margin_weight` > 0."""
    rows = await pool.fetch(MARGINS)
    return {row["product_id"]: row["margin"] for row in rows}
