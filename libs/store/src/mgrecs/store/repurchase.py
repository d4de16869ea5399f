"""`repurchase_params` and `repurchase_stats` (migration 0012): the buy-again parameters and
per-product statistics each model version was fitted with, and the purchase history the
api scores with those of the served version."""

from collections.abc import Iterable
from typing import Any

import asyncpg

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

# The customer's ($1) purchases of each product still on sale: in how many distinct orders,
# and when last; with the repurchase statistics and parameters the served model version of
# recipe $2 stored (all NULL when it stored none: the defaults serve). Cancelled and returned lines
# are not in order_items (the tracker removes them), as for every other reader.
HISTORY = f"""
WITH params AS (
    SELECT p.model_version, p.params, p.default_repeat_rate, p.default_interval_days
    FROM repurchase_params p
    WHERE p.model_version = ({SERVED_VERSION.format(recipe="$2")})
),
bought AS (
    SELECT oi.product_id, count(DISTINCT o.order_id) AS orders, max(o.ordered_at) AS last_at
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.order_id
    WHERE o.customer_id = $1
    GROUP BY oi.product_id
)
SELECT b.product_id, b.orders, b.last_at, s.repeat_rate, s.interval_days,
       p.model_version, p.params, p.default_repeat_rate, p.default_interval_days
FROM bought b
JOIN products pr ON pr.product_id = b.product_id AND pr.active
LEFT JOIN params p ON TRUE
LEFT JOIN repurchase_stats s
       ON s.model_version = p.model_version AND s.product_id = b.product_id
"""


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


async def purchase_history(
    pool: asyncpg.Pool, customer_id: str, recipe: str = RECIPE
) -> list[asyncpg.Record]:
    """`HISTORY`'s rows for one customer, with the statistics of `recipe`'s active version
    (the engine's, or AWS mode's: `model_versions.mode_recipe`), in one round trip."""
    return list(await pool.fetch(HISTORY, customer_id, recipe))
