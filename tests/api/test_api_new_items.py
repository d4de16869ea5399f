"""New products reach customers: products launched since the last retrain take the "new in
your categories" slot of a customer's list (whatever its source) and appear among a
product's similar items (bought with it, or of its category), on the real database."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store import products as store_products
from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.helpers import asgi_client

NOW = datetime.now(UTC)
CATEGORIES = {"p1": "tea", "p2": "tea", "p3": "snacks", "p4": "tea", "p5": "snacks"}
ORDERS = {"c1": ["p1", "p2"], "c2": ["p3", "p5"], "c3": ["p1", "p4", "p5"]}
"""c1 buys tea only, c2 snacks only, c3 more tea than snacks."""
NEW = {
    # id: (category, launched days ago, active, attributes)
    "n-tea": ("tea", 1, True, {"brand": "Leaf", "size": "100g"}),
    "n-tea-2": ("tea", 2, True, {"brand": "Other"}),
    "n-snack": ("snacks", 2, True, {}),
    "n-old": ("tea", 60, True, {}),
    "n-soon": ("tea", -1, True, {}),
    "n-gone": ("tea", 1, False, {}),
}


async def add_new_products(pool: asyncpg.Pool) -> None:
    """The catalogue's new products (the catalogue ingestion writes these columns)."""
    for product_id, (category, days, active, attributes) in NEW.items():
        await pool.execute(
            "INSERT INTO products (product_id, name, category, active, launched_at, attributes)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            product_id,
            f"product {product_id}",
            category,
            active,
            NOW - timedelta(days=days),
            attributes,
        )


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    await insert_products(
        pool, [StoredProduct(p, f"product {p}", c) for p, c in CATEGORIES.items()]
    )
    await add_new_products(pool)
    await insert_customers(pool, [StoredCustomer(c, "north") for c in ORDERS])
    await insert_orders(
        pool,
        [
            StoredOrder(
                f"o-{customer}",
                customer,
                NOW - timedelta(days=3),
                [StoredLine(line, p) for line, p in enumerate(products)],
            )
            for customer, products in ORDERS.items()
        ],
    )
    cached = [("p3", 0.9), ("p4", 0.5), ("p5", 0.25)]
    await put_current(pool, USERS, "c1", [{"product_id": p, "score": s} for p, s in cached])


def client_with(settings: Settings, **changes: object) -> httpx.AsyncClient:
    return asgi_client(create_app(settings.model_copy(update=changes)))


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Half the slots for new products, so that a short list shows them."""
    async with client_with(settings, new_items_share=0.5) as http:
        yield http


USER_PATH = "/v1/users/c1/recommendations"


async def items(client: httpx.AsyncClient, path: str, **params: object) -> list[dict[str, object]]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, object]] = response.json()["items"]
    return found


async def test_cached_list_gets_new_products_of_the_customers_categories(
    shop: None, client: httpx.AsyncClient
) -> None:
    listed = await items(client, "/v1/users/c1/recommendations", limit=4)
    assert [i["product_id"] for i in listed] == ["p3", "n-tea", "p4", "n-tea-2"]
    assert [i["reason"] for i in listed] == [None, "new in tea", None, "new in tea"]
    scores = [i["score"] for i in listed]
    assert scores == sorted(scores, reverse=True)


async def test_popular_answer_gets_them_too_most_bought_category_first(
    shop: None, client: httpx.AsyncClient
) -> None:
    listed = await items(client, "/v1/users/c3/recommendations", limit=4)
    new = [(i["product_id"], i["reason"]) for i in listed if str(i["reason"]).startswith("new")]
    assert new == [("n-tea", "new in tea"), ("n-tea-2", "new in tea")]
    listed = await items(client, "/v1/users/c2/recommendations", limit=2)
    assert ("n-snack", "new in snacks") in [(i["product_id"], i["reason"]) for i in listed]


async def test_never_old_future_or_inactive_or_other_categories(
    shop: None, client: httpx.AsyncClient
) -> None:
    listed = {i["product_id"] for i in await items(client, "/v1/users/c1/recommendations")}
    assert not listed & {"n-old", "n-soon", "n-gone", "n-snack"}


async def test_the_asked_category_bounds_the_new_products(
    shop: None, client: httpx.AsyncClient
) -> None:
    listed = await items(client, "/v1/users/c3/recommendations", limit=4, category="snacks")
    assert all(i["product_id"] not in ("n-tea", "n-tea-2") for i in listed)
    assert "n-snack" in [i["product_id"] for i in listed]


async def test_share_zero_turns_the_slot_off(shop: None, settings: Settings) -> None:
    async with client_with(settings, new_items_share=0.0) as http:
        listed = await items(http, "/v1/users/c1/recommendations", limit=4)
    assert [i["product_id"] for i in listed] == ["p3", "p4", "p5"]


async def served_within(
    client: httpx.AsyncClient, path: str, done: Callable[[list[str]], bool]
) -> list[str]:
    """The product ids `path` lists once `done` says so (the API reads the new products
    again every `new_items_refresh_seconds`), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        listed = [str(i["product_id"]) for i in await items(client, path)]
        if done(listed) or time.monotonic() > deadline:
            return listed
        await asyncio.sleep(0.1)


async def test_a_retrain_after_the_launch_makes_it_no_longer_new(
    shop: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    async with client_with(settings, new_items_share=0.5, new_items_refresh_seconds=0.2) as http:
        assert "n-tea-2" in [i["product_id"] for i in await items(http, USER_PATH)]
        trained = ModelVersion(
            "v1", RECIPE, "/nowhere", 3, 5, 7, trained_at=NOW - timedelta(hours=36)
        )
        await register(pool, trained, promote=True, reason="test")
        listed = await served_within(http, USER_PATH, lambda ids: "n-tea-2" not in ids)
    assert "n-tea" in listed  # launched a day ago: after the retrain
    assert "n-tea-2" not in listed  # two days ago: the model was trained after it


async def test_a_launch_shows_within_the_refresh_without_a_query_per_request(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """The new products are kept in memory: with none of the customer's categories, a list
    costs no query for them; one launched later shows within the refresh."""
    await insert_products(
        pool, [StoredProduct(p, f"product {p}", c) for p, c in CATEGORIES.items()]
    )
    await insert_customers(pool, [StoredCustomer("c1", "north")])
    await insert_orders(
        pool, [StoredOrder("o-c1", "c1", NOW - timedelta(days=3), [StoredLine(0, "p1")])]
    )
    await put_current(pool, USERS, "c1", [{"product_id": "p3", "score": 0.9}])
    app = create_app(
        settings.model_copy(update={"new_items_share": 0.5, "new_items_refresh_seconds": 0.2})
    )
    async with asgi_client(app) as http:
        for _ in range(3):
            assert [i["product_id"] for i in await items(http, USER_PATH)] == ["p3"]
        assert app.state.new_products.customer_reads == 0  # nothing new: no query
        await add_new_products(pool)
        listed = await served_within(http, USER_PATH, lambda ids: "n-tea" in ids)
        assert listed == ["p3", "n-tea", "n-tea-2"]  # tea only: c1 bought tea
        # c1's part came with its cached list's read: still no query of the slot's own
        assert app.state.new_products.customer_reads == 0
        # no cached list to bring it along: one query
        await pool.execute("DELETE FROM offline_user_recommendations WHERE user_id = 'c1'")
        listed = [i["product_id"] for i in await items(http, USER_PATH)]
        assert "n-tea" in listed and app.state.new_products.customer_reads == 1


SIMILAR_PATH = "/v1/products/p1/similar"


async def test_similar_items_take_a_launch_from_memory_without_a_query_per_request(
    pool: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no new product, a product's cached similar items cost the single cache read; a
    launch shows within the refresh, its product part read with the cached list; without a
    cached list (the engine down: the catalogue answers) one small query more."""
    calls: Counter[str] = Counter()
    for name in ("product_like_new", "similar_list_like_new"):
        real = getattr(store_products, name)

        async def spy(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls[_name] += 1
            return await _real(*args)

        monkeypatch.setattr(store_products, name, spy)
    await insert_products(
        pool, [StoredProduct(p, f"product {p}", c) for p, c in CATEGORIES.items()]
    )
    await put_current(pool, SIMILAR, "p1", [{"product_id": "p2", "score": 0.8}])
    app = create_app(
        settings.model_copy(update={"new_items_share": 0.5, "new_items_refresh_seconds": 0.2})
    )
    async with asgi_client(app) as http:
        for _ in range(3):
            assert [i["product_id"] for i in await items(http, SIMILAR_PATH, limit=2)] == ["p2"]
        assert calls == {}  # nothing new: the cache read alone
        await add_new_products(pool)
        listed = await served_within(http, SIMILAR_PATH, lambda ids: "n-tea" in ids)
        assert listed[:2] == ["p2", "n-tea"]
        assert calls["product_like_new"] == 0 and calls["similar_list_like_new"] >= 1
        await pool.execute("DELETE FROM offline_similar_items WHERE product_id = 'p1'")
        await insert_orders(pool, [StoredOrder("o-p1", "c9", NOW, [StoredLine(0, "p1")])])
        body = (await http.get(SIMILAR_PATH, params={"limit": 2})).json()
        assert body["source"] == "catalogue" and "n-tea" in [i["product_id"] for i in body["items"]]
        assert calls["product_like_new"] == 1


async def test_unknown_customer_keeps_its_404(shop: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/nobody/recommendations")
    assert response.status_code == 404
    assert "unknown user" in response.json()["detail"]


async def test_similar_items_of_a_product_get_new_ones_of_its_category(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await put_current(pool, SIMILAR, "p1", [{"product_id": "p2", "score": 0.8}])
    listed = await items(client, "/v1/products/p1/similar", limit=2)
    assert [i["product_id"] for i in listed] == ["p2", "n-tea"]
    assert listed[1]["reason"] == "new in tea"


async def test_shared_attributes_rank_new_products(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "UPDATE products SET attributes = '{\"brand\": \"Other\"}'::jsonb WHERE product_id = 'p1'"
    )
    await put_current(pool, SIMILAR, "p1", [{"product_id": "p2", "score": 0.8}])
    listed = await items(client, "/v1/products/p1/similar", limit=2)
    assert [i["product_id"] for i in listed] == ["p2", "n-tea-2"]


async def test_first_co_purchases_put_a_new_product_among_similar_items(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await insert_orders(
        pool, [StoredOrder("o-first", "c2", NOW, [StoredLine(0, "p3"), StoredLine(1, "n-tea")])]
    )
    await put_current(pool, SIMILAR, "p3", [{"product_id": "p5", "score": 0.7}])
    listed = await items(client, "/v1/products/p3/similar", limit=2)
    assert [(i["product_id"], i["reason"]) for i in listed] == [
        ("p5", None),
        ("n-tea", "new, bought together with product p3"),
    ]
