"""The small shop most batch tests (and the dashboard's) start from, written through the
store's own writers: eight orders by six customers in two regions."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder
from mgrecs.store.orders import insert_orders as store_orders
from mgrecs.store.products import StoredProduct, insert_products

# (order id, customer, region, days ago, products). c6 only ordered long ago (inactive);
# p7 was never bought.
ORDERS: Sequence[tuple[str, str, str, int, list[str]]] = [
    ("o1", "c1", "north", 10, ["p1", "p2"]),
    ("o2", "c1", "north", 2, ["p3"]),
    ("o3", "c2", "north", 8, ["p1", "p2", "p3"]),
    ("o4", "c3", "north", 5, ["p2", "p3"]),
    ("o5", "c4", "south", 7, ["p4", "p5"]),
    ("o6", "c4", "south", 1, ["p6"]),
    ("o7", "c5", "south", 3, ["p4", "p5", "p6"]),
    ("o8", "c6", "south", 200, ["p1", "p4"]),
]
ACTIVE_CUSTOMERS = {"c1", "c2", "c3", "c4", "c5"}
BOUGHT_PRODUCTS = {"p1", "p2", "p3", "p4", "p5", "p6"}


async def insert_orders(
    pool: asyncpg.Pool,
    orders: Sequence[tuple[str, str, str, float, list[str]]],
    products: Sequence[str],
    customers: set[tuple[str, str]],
) -> None:
    """`orders` as (order id, customer, region, days ago, products), each line quantity
    1 + its index at 2.50, after the products and customers they name."""
    await insert_products(pool, [StoredProduct(p, f"product {p}") for p in products])
    await insert_customers(pool, [StoredCustomer(c, r) for c, r in sorted(customers)])
    now = datetime.now(UTC)
    await store_orders(
        pool,
        [
            StoredOrder(
                order_id,
                customer,
                now - timedelta(days=days_ago),
                [StoredLine(n, p, 1 + n, 2.50) for n, p in enumerate(products_bought)],
                region,
            )
            for order_id, customer, region, days_ago, products_bought in orders
        ],
    )


async def insert_shop(
    pool: asyncpg.Pool, extra_customers: Iterable[tuple[str, str]] = (), products: int = 7
) -> None:
    """`ORDERS` with products p1..p`products` and their customers, plus `extra_customers`
    (customer, region) who never ordered."""
    customers = {(c, r) for _, c, r, _, _ in ORDERS} | set(extra_customers)
    await insert_orders(pool, ORDERS, [f"p{i}" for i in range(1, products + 1)], customers)


def check_cache_list(items: Any, k: int, known: set[str]) -> None:
    """The old pipeline's shape: a list of {product_id, score[, reason]}, best first."""
    assert isinstance(items, list) and 0 < len(items) <= k
    for item in items:
        assert set(item) in ({"product_id", "score"}, {"product_id", "score", "reason"})
        assert item["product_id"] in known
        assert 0.0 <= item["score"] <= 1.0
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert len({item["product_id"] for item in items}) == len(items)


async def insert_pairs(pool: asyncpg.Pool, fillers: int = 0) -> None:
    """Products a0..a4 and b0..b4 come in pairs: 40 customers (north) bought a pair long ago,
    30 more (south) one half long ago and its partner in the last days: enough to validate
    on. Plus `fillers` customers (north) who each bought one filler product (0f00, ...): they
    sort first, so a recipe scoring nothing would rank them first."""
    orders: list[tuple[str, str, str, float, list[str]]] = []
    for c in range(40):
        orders.append((f"f{c}", f"full{c}", "north", 100 - c, [f"a{c % 5}", f"b{c % 5}"]))
    for c in range(30):
        orders.append((f"l{c}a", f"late{c}", "south", 90 - c, [f"a{c % 5}"]))
        orders.append((f"l{c}b", f"late{c}", "south", 1 + c / 100, [f"b{c % 5}"]))
    for c in range(fillers):
        orders.append((f"x{c}", f"filler{c}", "north", 95 - c, [f"0f{c:02d}"]))
    products = [f"{x}{n}" for x in "ab" for n in range(5)] + [f"0f{c:02d}" for c in range(fillers)]
    customers = {(customer, region) for _, customer, region, _, _ in orders}
    await insert_orders(pool, orders, products, customers)


async def insert_three_customers(pool: asyncpg.Pool) -> None:
    """The served lists' shop (api rules and recording tests; products p1..p6 must exist):
    c1 (north) with a cached list of p1..p6, c2 (north) and c9 (south) without, one order each
    two days ago; similar items of p1: p2..p6."""
    await insert_customers(
        pool,
        [
            StoredCustomer("c1", "north"),
            StoredCustomer("c2", "north"),
            StoredCustomer("c9", "south"),
        ],
    )
    now = datetime.now(UTC)
    await store_orders(
        pool,
        [
            StoredOrder(
                f"o{n}",
                customer,
                now - timedelta(days=2),
                [StoredLine(0, pid)],
                ingested_at=now - timedelta(days=2),
            )
            for n, (customer, pid) in enumerate([("c1", "p1"), ("c2", "p2"), ("c9", "p5")])
        ],
    )
    written = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    cached = [{"product_id": f"p{n}", "score": round(1 - n / 10, 2)} for n in range(1, 7)]
    await put_current(pool, USERS, "c1", cached, written)
    await put_current(pool, SIMILAR, "p1", cached[1:], written)
