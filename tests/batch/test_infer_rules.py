"""Batch inference applies the business rules' filters current when it runs: a filtered
product is in no cached list of the customers (and region) it applies to, nor in similar
items, and the lists keep their length (the model is asked for extra candidates)."""

from datetime import UTC, datetime, timedelta

import asyncpg

from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.common.settings import Settings
from mgrecs.store import rules
from mgrecs.store.customers import active_customer_regions
from support.shop import ACTIVE_CUSTOMERS, BOUGHT_PRODUCTS, check_cache_list


async def test_infer_leaves_filtered_products_out(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    settings.recommendations_per_user = 3
    settings.similar_per_product = 2
    await retrain(pool, settings)
    await rules.create_rule(pool, rules.RuleFields("filter", target={"products": ["p1"]}), "t")
    await rules.create_rule(
        pool, rules.RuleFields("filter", region="north", target={"products": ["p5"]}), "t"
    )
    await rules.create_rule(  # disabled: no effect
        pool, rules.RuleFields("filter", target={"products": ["p6"]}, enabled=False), "t"
    )
    await infer(pool, settings)

    users = {
        r["user_id"]: r["recommendations"]
        for r in await pool.fetch("SELECT * FROM offline_user_recommendations")
    }
    assert set(users) == ACTIVE_CUSTOMERS
    regions = await active_customer_regions(pool, datetime.now(UTC) - timedelta(days=3650))
    for user, items in users.items():
        served = {item["product_id"] for item in items}
        assert "p1" not in served
        if regions.get(user) == "north":
            assert "p5" not in served
        check_cache_list(items, 3, BOUGHT_PRODUCTS)
    similar = await pool.fetch("SELECT * FROM offline_similar_items")
    for row in similar:
        assert "p1" not in {item["product_id"] for item in row["similar_products"]}
    assert any("p6" in {i["product_id"] for i in items} for items in users.values())
