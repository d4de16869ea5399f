"""The catalogue and the orders both write `products`, in any order: once the catalogue has
described a product, its newest version's name, category and price stand, whatever orders
arrive before or after, and in whatever order the catalogue's versions arrive."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.schemas import OrderEvent
from mgrecs.store.orders import write_orders
from mgrecs.store.products import write_catalogue

T0 = datetime(2026, 11, 1, tzinfo=UTC)
FIELDS = "name, category, price, cost, in_stock, active, launched_at, attributes"


def catalogue_version(hours: int, price: str, stock: bool) -> ProductEvent:
    return ProductEvent(
        product_id="P",
        name=f"Catalogue {hours}",
        category="catalogue",
        price=Decimal(price),
        cost=Decimal("1.00"),
        in_stock=stock,
        attributes={"v": hours},
        updated_at=T0 + timedelta(hours=hours),
    )


def order(number: int, price: str) -> OrderEvent:
    return OrderEvent.model_validate(
        {
            "order_id": f"O{number}",
            "ordered_at": T0 + timedelta(minutes=number),
            "customer": {"customer_id": "C"},
            "lines": [
                {
                    "product_id": "P",
                    "quantity": 1,
                    "price": price,
                    "product_name": f"Order {number}",
                    "category": "orders",
                }
            ],
        }
    )


events = st.lists(
    st.one_of(
        st.tuples(
            st.just("catalogue"),
            st.integers(0, 4),
            st.sampled_from(["5.00", "6.00"]),
            st.booleans(),
        ),
        st.tuples(st.just("order"), st.integers(0, 50), st.sampled_from(["1.00", "2.00"])),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=events, seed=st.integers(0, 2**16))
async def test_orders_never_clobber_the_newest_catalogue_version(
    pool: asyncpg.Pool, history: list[tuple], seed: int
) -> None:
    await pool.execute("DELETE FROM order_items; DELETE FROM orders; DELETE FROM products")
    arrivals = history[:]
    random.Random(seed).shuffle(arrivals)
    for event in arrivals:
        if event[0] == "catalogue":
            await write_catalogue(pool, [catalogue_version(*event[1:])])
        else:
            await write_orders(pool, [order(*event[1:])])
    row = await pool.fetchrow(f"SELECT {FIELDS} FROM products WHERE product_id = 'P'")
    versions = [catalogue_version(*e[1:]) for e in history if e[0] == "catalogue"]
    if not versions:
        assert row["name"].startswith("Order ")  # only orders named it
        return
    # the reference: the catalogue's versions alone, one at a time, oldest first
    await pool.execute("DELETE FROM order_items; DELETE FROM orders; DELETE FROM products")
    for version in sorted(versions, key=lambda v: v.updated_at):
        await write_catalogue(pool, [version])
    assert await pool.fetchrow(f"SELECT {FIELDS} FROM products WHERE product_id = 'P'") == row
