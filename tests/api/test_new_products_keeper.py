"""The "new in your categories" slot and the new products among a product's similar items,
from the API's memory (`NewProductsKeeper`), choose exactly what the per-request queries
they replaced chose: the same products, in the same order, for any shop, customer or
product, retrain and asked categories (Hypothesis, real PostgreSQL)."""

import dataclasses
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.new_items import NewProductsKeeper, similar_candidates
from mgrecs.api.repository import Repository, new_product
from mgrecs.common.settings import Settings
from mgrecs.engine.new_items import new_for_customer, new_like
from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import ACTIVE_OF, RECIPE, ModelVersion, register
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders

NOW = datetime.now(UTC).replace(microsecond=0)
MAX_DAYS = 30

# "New" products as the per-request queries read them: launched after the active model of
# lineage $2 was trained (before any: within the last $3 days before $4, the request time),
# and not after $4; on sale and in stock.
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

# The per-request query of a product's similar items that the keeper replaced (as it was):
# the new products like product $1, bought together with it or of its category.
PER_REQUEST_LIKE = f"""
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


async def write_shop(
    pool: asyncpg.Pool,
    products: list[tuple[str | None, int | None, bool, bool]],
    bought: list[tuple[str, list[int]]],
    trained_days_ago: int | None,
    brands: list[str | None] | None = None,
) -> None:
    """The drawn catalogue (`p<n>`, with `brands[n]` when given), orders of a day ago, and
    an active version trained `trained_days_ago` (none when None), on an empty shop."""
    await pool.execute("TRUNCATE order_items, orders, customers, products, model_versions CASCADE")
    for n, (category, days, active, in_stock) in enumerate(products):
        await pool.execute(
            "INSERT INTO products (product_id, category, launched_at, active, in_stock,"
            " attributes) VALUES ($1, $2, $3, $4, $5, $6)",
            f"p{n}",
            category,
            None if days is None else NOW - timedelta(days=days, hours=n),
            active,
            in_stock,
            {} if brands is None or brands[n] is None else {"brand": brands[n]},
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
    await write_shop(pool, products, bought, trained_days_ago)

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


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    products=st.lists(product, min_size=1, max_size=12),
    brands=st.lists(st.sampled_from([None, "a", "b"]), min_size=12, max_size=12),
    bought=orders,
    trained_days_ago=st.none() | st.integers(0, 40),
    asked=st.integers(0, 12),
    slots=st.integers(1, 5),
)
async def test_similar_items_from_memory_choose_what_the_query_chose(
    pool: asyncpg.Pool,
    products: list[tuple[str | None, int | None, bool, bool]],
    brands: list[str | None],
    bought: list[tuple[str, list[int]]],
    trained_days_ago: int | None,
    asked: int,
    slots: int,
) -> None:
    """Product `p<asked>` (`p12`: not in the catalogue) asks for its similar items."""
    await write_shop(pool, products, bought, trained_days_ago, brands)
    product_id = f"p{asked}" if asked < len(products) else "p12"

    rows = await pool.fetch(PER_REQUEST_LIKE, product_id, RECIPE, MAX_DAYS, NOW, 1000)
    expected = []
    if rows:
        of = rows[0]
        found = [new_product(r) for r in rows]
        expected = new_like(product_id, of["of_category"], of["of_attributes"], found, set(), slots)

    keeper = NewProductsKeeper(pool, RECIPE, MAX_DAYS, 1.0, lambda: NOW)
    await keeper.refresh()
    settings = Settings(new_items_share=1.0)
    candidates = similar_candidates(keeper, settings, NOW, slots)
    if not candidates:  # no query then: nothing to choose from
        assert expected == []
        return
    repository = Repository(pool, 0, RECIPE)
    part = await repository.product_like_new(product_id, candidates)
    counted = [
        dataclasses.replace(c, bought_with=part.bought_with.get(c.product_id, 0))
        for c in candidates
    ]
    assert new_like(product_id, part.category, part.attributes, counted, set(), slots) == expected
    # With the cached list: the same part, in the same round trip.
    await pool.execute(f"DELETE FROM {SIMILAR.view} WHERE {SIMILAR.key} = $1", product_id)
    await put_current(pool, SIMILAR, product_id, [{"product_id": "p0", "score": 0.5}])
    cached = await repository.similar_cache(product_id, candidates)
    assert cached is not None and cached.items == [{"product_id": "p0", "score": 0.5}]
    assert cached.product == part
