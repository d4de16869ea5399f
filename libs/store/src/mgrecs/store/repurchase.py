"""`repurchase_params` and `repurchase_stats` (migration 0012): the buy-again parameters and
per-product statistics each model version was fitted with, and the buy-again list's inputs
(a customer's purchase history from `customer_products`, scored with those of the served
version, which the api holds by version and fitting time)."""

from collections.abc import Iterable
from typing import Any

import asyncpg

from mgrecs.store.cache import USER_LIST
from mgrecs.store.model_versions import RECIPE, SERVED_VERSION

INSERT_PARAMS = """
INSERT INTO repurchase_params
    (model_version, params, default_repeat_rate, default_interval_days, products)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (model_version) DO UPDATE SET
    params = EXCLUDED.params,
    default_repeat_rate = EXCLUDED.default_repeat_rate,
    default_interval_days = EXCLUDED.default_interval_days,
    products = EXCLUDED.products,
    fitted_at = now()
"""

PRUNE = """
DELETE FROM repurchase_params
WHERE model_version NOT IN (
    SELECT version FROM model_versions WHERE active
    UNION ALL
    (SELECT version FROM model_versions WHERE promoted_at IS NOT NULL
     ORDER BY promoted_at DESC LIMIT $1)
    UNION ALL
    (SELECT model_version FROM repurchase_params ORDER BY fitted_at DESC LIMIT $1)
)
"""

# Everything the buy-again list of customer $1 needs from the database (recipe $2's active
# version), in one row (one round trip): their purchases of each product still on sale as
# aligned arrays (in how many distinct orders, when last in epoch seconds), which version's
# repurchase figures score them and when they were fitted (NULL: the served version stored
# none, the defaults serve; the api holds the figures themselves, `FIGURES`, keyed by both),
# and their cached discovery list (cache.USER_LIST, `cached` NULL without one), which
# completes a short list. The purchases are the customer's rows of `customer_products`
# (migration 0019: distinct orders and the last order's time per product, which the tracker
# keeps as `orders` and `order_items` say, so cancelled and returned lines do not count, as
# for every other reader): an index range, not an aggregate of their orders and lines, and no
# per-product statistics lookups (bench/RESULTS.md, 2026-12-07 afternoon). The product
# lookup is LATERAL with LIMIT so that it stays an index probe of the few products one
# customer bought, never a scan of the products table.
BUY_AGAIN = f"""
WITH history AS (
    SELECT array_agg(cp.product_id) AS product_ids,
           array_agg(cp.orders) AS orders,
           array_agg(extract(epoch FROM cp.last_ordered_at)::float8) AS last_at
    FROM customer_products cp
    CROSS JOIN LATERAL (
        SELECT 1 FROM products pr WHERE pr.product_id = cp.product_id AND pr.active LIMIT 1
    ) on_sale
    WHERE cp.customer_id = $1
)
SELECT h.product_ids, h.orders, h.last_at, p.model_version, p.fitted_at,
       c.cached, c.recommendations, c.updated_at, c.model_version AS cache_model_version,
       c.age_seconds, c.outdated, c.region
FROM history h
LEFT JOIN repurchase_params p ON p.model_version = ({SERVED_VERSION.format(recipe="$2")})
LEFT JOIN (SELECT TRUE AS cached, u.* FROM ({USER_LIST}) u) c ON TRUE
"""

FIGURES = """
SELECT p.params, p.default_repeat_rate, p.default_interval_days, p.fitted_at,
       s.product_ids, s.repeat_rates, s.interval_days
FROM repurchase_params p
CROSS JOIN LATERAL (
    SELECT array_agg(st.product_id) AS product_ids, array_agg(st.repeat_rate) AS repeat_rates,
           array_agg(st.interval_days) AS interval_days
    FROM repurchase_stats st
    WHERE st.model_version = p.model_version
) s
WHERE p.model_version = $1
"""
"""Version $1's repurchase parameters, the statistics assumed for products it never saw, and
its per-product statistics (aligned arrays), with when they were fitted; no row once pruned.
One statement: one snapshot, so the figures and `fitted_at` belong together."""


async def save(
    conn: asyncpg.Connection,
    version: str,
    params: dict[str, Any],
    defaults: tuple[float, float],
    stats: Iterable[tuple[str, float, float]],
    keep_versions: int,
) -> None:
    """Store version `version`'s parameters, the (repeat rate, interval days) assumed for
    products it never saw (`defaults`) and its per-product `stats` (product, repeat rate,
    interval days), replacing any; then forget the statistics of versions other than the
    active ones, the newest `keep_versions` fitted and the most recently promoted. One
    transaction."""
    records = [(version, *record) for record in stats]
    async with conn.transaction():
        await conn.execute(INSERT_PARAMS, version, params, *defaults, len(records))
        await conn.execute("DELETE FROM repurchase_stats WHERE model_version = $1", version)
        await conn.copy_records_to_table(
            "repurchase_stats",
            records=records,
            columns=["model_version", "product_id", "repeat_rate", "interval_days"],
        )
        await conn.execute(PRUNE, keep_versions)


async def buy_again(
    pool: asyncpg.Pool | asyncpg.Connection, customer_id: str, recipe: str = RECIPE
) -> asyncpg.Record:
    """`BUY_AGAIN`'s row for one customer (always one: empty arrays are NULL), naming the
    figures of `recipe`'s active version (the engine's, or AWS mode's:
    `model_versions.mode_recipe`)."""
    row: asyncpg.Record = await pool.fetchrow(BUY_AGAIN, customer_id, recipe)
    return row


async def figures(pool: asyncpg.Pool, version: str) -> asyncpg.Record | None:
    """`FIGURES` of model version `version` (None: it has none stored)."""
    row: asyncpg.Record | None = await pool.fetchrow(FIGURES, version)
    return row
