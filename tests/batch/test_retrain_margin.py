"""A retrain measures the chosen recipe's margin curve (`metrics.margin_curve`, drawn by the
dashboard) when the catalogue has prices and costs, and leaves it out when it has none."""

import asyncpg

from mgrecs.batch.training import retrain
from mgrecs.common.settings import Settings
from mgrecs.engine.margin import WEIGHTS
from mgrecs.store.model_versions import active_metrics
from support.shop import insert_pairs


async def test_a_retrain_stores_the_margin_curve_of_its_recipe(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_pairs(pool)
    await pool.execute("UPDATE products SET price = 10, cost = 10 - length(product_id)")
    await retrain(pool, settings)
    metrics = await active_metrics(pool)
    assert metrics is not None
    curve = metrics["margin_curve"]
    assert curve["recipe"] == metrics["recipe"]
    assert [p["weight"] for p in curve["points"]] == list(WEIGHTS)
    assert curve["products_with_margin"] > 0 and curve["users"] > 0


async def test_without_costs_a_retrain_has_no_curve(pool: asyncpg.Pool, settings: Settings) -> None:
    await insert_pairs(pool)
    await retrain(pool, settings)
    metrics = await active_metrics(pool)
    assert metrics is not None and "margin_curve" not in metrics
