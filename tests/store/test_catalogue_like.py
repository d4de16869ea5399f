"""The candidates of `CATALOGUE_LIKE` (similar items of a product no model knows), on the
real database: counted as the orders say, on sale and in stock only, and cut by the
database in the order `content.catalogue_like` ranks them, so a short read loses nothing the
ranking would have kept."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgrecs.engine.content import CatalogueCandidate, catalogue_like
from mgrecs.store import products
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders

T0 = datetime(2026, 11, 1, tzinfo=UTC)
IDS = [f"p{n}" for n in range(8)]

product = st.tuples(
    st.sampled_from([None, "tea", "snacks"]),
    st.dictionaries(
        st.sampled_from(["brand", "size"]), st.sampled_from(["x", "y", 1, 1.0, None]), max_size=2
    ),
    st.booleans(),  # active
    st.booleans(),  # in stock
)
catalogue = st.lists(product, min_size=len(IDS), max_size=len(IDS))
baskets = st.lists(st.sets(st.sampled_from(IDS), min_size=1, max_size=4), max_size=8)


async def candidates(
    pool: asyncpg.Pool, product_id: str, limit: int
) -> tuple[list[CatalogueCandidate], str | None, dict[str, Any]]:
    rows = await products.catalogue_like(pool, product_id, limit)
    if not rows:
        return [], None, {}
    return (
        [
            CatalogueCandidate(
                r["product_id"],
                r["category"],
                r["attributes"],
                sold=r["sold"],
                bought_with=r["bought_with"],
            )
            for r in rows
        ],
        rows[0]["of_category"],
        rows[0]["of_attributes"],
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shop=catalogue, orders=baskets, asked=st.sampled_from(IDS))
async def test_candidates_match_the_orders_and_the_ranking(
    pool: asyncpg.Pool,
    shop: list[tuple[str | None, dict[str, Any], bool, bool]],
    orders: list[set[str]],
    asked: str,
) -> None:
    await pool.execute(
        "DELETE FROM order_items; DELETE FROM orders; DELETE FROM customers; DELETE FROM products"
    )
    for product_id, (category, attributes, active, in_stock) in zip(IDS, shop, strict=True):
        await pool.execute(
            "INSERT INTO products (product_id, category, attributes, active, in_stock)"
            " VALUES ($1, $2, $3, $4, $5)",
            product_id,
            category,
            attributes,
            active,
            in_stock,
        )
    await insert_customers(pool, [StoredCustomer("c", "north")])
    await insert_orders(
        pool,
        [
            StoredOrder(
                f"o{n}",
                "c",
                T0 + timedelta(hours=n),
                [StoredLine(i, p) for i, p in enumerate(sorted(b))],
            )
            for n, b in enumerate(orders)
        ],
    )
    found, category, attributes = await candidates(pool, asked, 100)
    info = dict(zip(IDS, shop, strict=True))
    assert (category, attributes) == ((info[asked][0], info[asked][1]) if found else (None, {}))
    for c in found:
        own_category, _, active, in_stock = info[c.product_id]
        assert c.product_id != asked and active and in_stock
        assert c.bought_with == sum(1 for b in orders if asked in b and c.product_id in b)
        assert c.sold == sum(1 for b in orders if c.product_id in b)
        assert c.bought_with > 0 or (own_category is not None and own_category == category)
    everything = catalogue_like(asked, category, attributes, found, 100)
    for limit in range(1, len(IDS)):
        cut, _, _ = await candidates(pool, asked, limit)
        assert catalogue_like(asked, category, attributes, cut, limit) == everything[:limit]
