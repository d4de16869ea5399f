"""The "new in your categories" slot from the API's memory (`NewProductsKeeper`) chooses
exactly what the per-request query it replaced chose: the same products, in the same order,
for any shop, customer, retrain and asked categories (Hypothesis, real PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.new_items import NewProductsKeeper
from mgrecs.api.repository import Repository, new_product
from mgrecs.engine.new_items import new_for_customer
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import NEW_SINCE

NOW = datetime.now(UTC).replace(microsecond=0)
MAX_DAYS = 30

# The per-request query the keeper replaced (as it was), the reference here.
PER_REQUEST = f"""
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

CATEGORIES = ["tea", "snacks", "toys"]
product = st.tuples(
    st.sampled_from([*CATEGORIES, None]),
    st.none() | st.integers(-3, 45),  # launched days ago (None: never said)
    st.booleans(),  # active
    st.booleans(),  # in stock
)
orders = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.lists(st.integers(0, 11), max_size=4)),
    max_size=8,
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    products=st.lists(product, min_size=1, max_size=12),
    bought=orders,
    trained_days_ago=st.none() | st.integers(0, 40),
    asked=st.none() | st.lists(st.sampled_from(CATEGORIES), min_size=1, unique=True),
    slots=st.integers(1, 5),
)
async def test_the_memory_chooses_what_the_query_chose(
    pool: asyncpg.Pool,
    products: list[tuple[str | None, int | None, bool, bool]],
    bought: list[tuple[str, list[int]]],
    trained_days_ago: int | None,
    asked: list[str] | None,
    slots: int,
) -> None:
    await pool.execute("TRUNCATE order_items, orders, customers, products, model_versions CASCADE")
    for n, (category, days, active, in_stock) in enumerate(products):
        await pool.execute(
            "INSERT INTO products (product_id, category, launched_at, active, in_stock)"
            " VALUES ($1, $2, $3, $4, $5)",
            f"p{n}",
            category,
            None if days is None else NOW - timedelta(days=days, hours=n),
            active,
            in_stock,
        )
    await insert_customers(pool, [StoredCustomer(c, "north") for c in ("c1", "c2", "c3")])
    await insert_orders(
        pool,
        [
            StoredOrder(
                f"o{n}",
                customer,
                NOW - timedelta(days=1),
                [
                    StoredLine(line, f"p{index}")
                    for line, index in enumerate(dict.fromkeys(i % len(products) for i in lines))
                ],
            )
            for n, (customer, lines) in enumerate(bought)
            if lines
        ],
    )
    if trained_days_ago is not None:
        trained = NOW - timedelta(days=trained_days_ago, hours=5)
        model = ModelVersion("v1", RECIPE, "/nowhere", 1, 1, 1, trained_at=trained)
        await register(pool, model, promote=True, reason="test")

    rows = await pool.fetch(PER_REQUEST, "c1", RECIPE, MAX_DAYS, NOW, asked, 1000)
    weights = {r["category"]: r["weight"] for r in rows}
    expected = new_for_customer([new_product(r) for r in rows], weights, set(), slots)

    keeper = NewProductsKeeper(pool, RECIPE, MAX_DAYS, 1.0, lambda: NOW)
    await keeper.refresh()
    candidates = keeper.new_at(NOW, asked)
    if not candidates:  # no query then: nothing to choose from
        assert expected == []
        return
    # Read alone (no cached list served), and with the cached list (one round trip).
    alone = await keeper.customer_part("c1", candidates)
    assert new_for_customer(candidates, alone.weights, alone.bought, slots) == expected
    await pool.execute(f"DELETE FROM {USERS.view} WHERE {USERS.key} = 'c1'")
    await put_current(pool, USERS, "c1", [{"product_id": "p0", "score": 0.5}])
    cached = await Repository(pool, 0, RECIPE).user_cache("c1", candidates)
    assert cached is not None and cached.items == [{"product_id": "p0", "score": 0.5}]
    assert cached.customer == alone
