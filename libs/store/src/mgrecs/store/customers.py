"""Customers (`customers`): who they are and where, and the reads by region.

The tracker's batch writer (`mgrecs.store.orders.write_orders`) keeps them current from the
orders; `insert_customers` writes known rows as they are (fixtures, backfills).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from mgrecs.store.csv_copy import copy_csv


@dataclass(frozen=True)
class StoredCustomer:
    """A customer as stored."""

    customer_id: str
    region: str | None = None
    age: int | None = None
    gender: str | None = None
    city: str | None = None


INSERT = """
INSERT INTO customers (customer_id, region, age, gender, city) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (customer_id) DO NOTHING
"""


async def insert_customers(pool: asyncpg.Pool, customers: Sequence[StoredCustomer]) -> None:
    """Insert customers not stored yet (a known id is left as it is)."""
    await pool.executemany(
        INSERT, [(c.customer_id, c.region, c.age, c.gender, c.city) for c in customers]
    )


CUSTOMER = """
SELECT customer_id, region
FROM customers
WHERE customer_id = $1
"""


async def customer(pool: asyncpg.Pool, customer_id: str) -> asyncpg.Record | None:
    """(customer_id, region) of a known customer; None for an unknown one."""
    return await pool.fetchrow(CUSTOMER, customer_id)


REGION_EXISTS = "SELECT EXISTS (SELECT 1 FROM customers WHERE region = $1)"


async def region_exists(pool: asyncpg.Pool, region: str) -> bool:
    """Whether any customer lives in `region`."""
    return bool(await pool.fetchval(REGION_EXISTS, region))


# With their current region (None when unknown), for the per-region aggregates.
ACTIVE_CUSTOMER_REGIONS = """
SELECT c.customer_id, c.region FROM customers c
WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= $1)
ORDER BY c.customer_id
"""


async def active_customer_regions(pool: asyncpg.Pool, since: datetime) -> dict[str, str | None]:
    """Customers with an order at or after `since` (the ones worth a cached list), each with
    their region."""
    rows = await pool.fetch(ACTIVE_CUSTOMER_REGIONS, since)
    return {row[0]: row[1] for row in rows}


# Active customers of a region in a deterministic pseudo-random order that changes only
# with the window index ($3), so every request in one window samples the same customers;
# `population` counts them all (the window is over the rows before LIMIT).
REGION_SAMPLE = """
SELECT c.customer_id, count(*) OVER () AS population
FROM customers c
WHERE c.region = $1
  AND EXISTS (
      SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.ordered_at >= $2
  )
ORDER BY md5(c.customer_id || ':' || $1 || ':' || $3::bigint::text), c.customer_id
LIMIT $4
"""


async def region_sample(
    pool: asyncpg.Pool, region: str, active_since: datetime, window_index: int, size: int
) -> list[asyncpg.Record]:
    """(customer_id, population): the first `size` active customers of the region's order
    for this window."""
    rows: list[asyncpg.Record] = await pool.fetch(
        REGION_SAMPLE, region, active_since, window_index, size
    )
    return rows


# Every region with customers: how many, and how many bought since $1.
REGIONS = """
SELECT c.region, count(*) AS customers, count(a.customer_id) AS active_customers
FROM customers c
LEFT JOIN (SELECT DISTINCT customer_id FROM orders WHERE ordered_at >= $1) a
       ON a.customer_id = c.customer_id
WHERE c.region IS NOT NULL
GROUP BY c.region
ORDER BY c.region
"""


async def region_counts(pool: asyncpg.Pool, active_since: datetime) -> list[asyncpg.Record]:
    """(region, customers, active_customers) of every region with customers."""
    rows: list[asyncpg.Record] = await pool.fetch(REGIONS, active_since)
    return rows


async def regions(pool: asyncpg.Pool) -> list[str | None]:
    """Every distinct region of a customer (None last when some have none)."""
    rows = await pool.fetch("SELECT DISTINCT region FROM customers ORDER BY region")
    return [row[0] for row in rows]


async def count_customers_like(pool: asyncpg.Pool, pattern: str) -> int:
    """How many customer ids match the LIKE `pattern`."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM customers WHERE customer_id LIKE $1", pattern
    )
    return count


USERS_CSV = """
SELECT customer_id AS "USER_ID", age AS "AGE", gender AS "GENDER", region AS "LOCATION"
FROM customers ORDER BY customer_id"""
"""The Personalize users dataset's columns (the customer's region is the LOCATION)."""


async def export_users(pool: asyncpg.Pool, output: Path) -> int:
    """Every customer as a Personalize user, CSV at `output`; how many."""
    return await copy_csv(pool, USERS_CSV, output)
