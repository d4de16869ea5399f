"""`GET /v1/users/{id}/recommendations?category=...`: every source (cache, the engine's
category filter, popularity) keeps only products of the asked categories."""

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from mgrecs.common.settings import Settings
from mgrecs.engine.records import Interaction, ProductInfo
from mgrecs.engine_service.app import create_app as create_engine_app
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.engine import register_model
from support.fake_runtime import FakeRuntime
from support.helpers import serve

CATEGORIES = {"p1": "tea", "p2": "tea", "p3": "snacks", "p4": "tea", "p5": "snacks"}
ORDERS = {"c1": ["p1", "p2"], "c2": ["p1", "p3"], "c3": ["p1", "p4", "p5"]}
"""All in the north, all recent: distinct buyers p1 3, the others 1 each."""
UPDATED_AT = datetime(2026, 11, 26, 3, 0, 0)


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """The orders above; c1 has a cached list p3, p4, p5, p2 (best first)."""
    await insert_products(
        pool, [StoredProduct(p, f"product {p}", c) for p, c in CATEGORIES.items()]
    )
    await insert_customers(pool, [StoredCustomer(c, "north") for c in ORDERS])
    yesterday = datetime.now(UTC) - timedelta(days=1)
    await insert_orders(
        pool,
        [
            StoredOrder(
                f"o-{customer}",
                customer,
                yesterday,
                [StoredLine(line, p) for line, p in enumerate(products)],
            )
            for customer, products in ORDERS.items()
        ],
    )
    cached = [("p3", 0.9), ("p4", 0.5), ("p5", 0.25), ("p2", 0.2)]
    await put_current(
        pool, USERS, "c1", [{"product_id": p, "score": s} for p, s in cached], UPDATED_AT
    )


async def product_ids(client: httpx.AsyncClient, user: str, **params: object) -> list[str]:
    response = await client.get(f"/v1/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    return [item["product_id"] for item in response.json()["items"]]


async def test_category_filters_the_cached_list(shop: None, client: httpx.AsyncClient) -> None:
    assert await product_ids(client, "c1", category="snacks") == ["p3", "p5"]
    both = ["p3", "p4", "p5"]
    assert await product_ids(client, "c1", category="tea,snacks", limit=3) == both
    assert await product_ids(client, "c1", category=["tea", "snacks"], limit=3) == both
    # The cached list holds only so many: fewer than `limit` (here none) may be left.
    response = await client.get("/v1/users/c1/recommendations", params={"category": "coffee"})
    assert response.json()["source"] == "cache" and response.json()["items"] == []


async def test_category_goes_to_the_engine_as_its_filter(
    shop: None, client: httpx.AsyncClient, settings: Settings
) -> None:
    fake = FakeRuntime()
    async with serve(fake.app, settings.engine_port):
        await product_ids(client, "c2", category='snacks,Say "cheese"', limit=2)
    assert fake.requests == [
        {
            "campaignArn": settings.user_campaign_arn,
            "userId": "c2",
            "numResults": 2,
            "filterArn": settings.category_filter_arn,
            "filterValues": {"CATEGORY": '"snacks","Say \\"cheese\\""'},
        }
    ]


async def test_category_in_real_time_from_the_engine_service(
    shop: None, client: httpx.AsyncClient, settings: Settings, pool: asyncpg.Pool
) -> None:
    lines = [
        Interaction(customer, product, 1, datetime.now(UTC) - timedelta(days=1), "north")
        for customer, products in ORDERS.items()
        for product in products
    ]
    products = [ProductInfo(p, None, c) for p, c in CATEGORIES.items()]
    await register_model(pool, settings, "v1", lines, products)
    async with serve(create_engine_app(settings), settings.engine_port):
        response = await client.get("/v1/users/c2/recommendations", params={"category": "snacks"})
        tea = await product_ids(client, "c2", category="tea")
    # c2 bought p1 and p3: p5 is the only snack left (bought with p1 by c3).
    assert response.json()["source"] == "realtime"
    assert [item["product_id"] for item in response.json()["items"]] == ["p5"]
    assert sorted(tea) == ["p2", "p4"]


async def test_category_narrows_the_popularity_fallback(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/users/c2/recommendations", params={"category": "tea"})
    assert response.json()["source"] == "popular"
    assert response.json()["items"] == [
        {"product_id": "p1", "score": 1.0, "reason": "popular in north", "reason_product_ids": []},
        {
            "product_id": "p2",
            "score": round(1 / 3, 4),
            "reason": "popular in north",
            "reason_product_ids": [],
        },
        {
            "product_id": "p4",
            "score": round(1 / 3, 4),
            "reason": "popular in north",
            "reason_product_ids": [],
        },
    ]


@pytest.mark.parametrize(
    ("category", "message"),
    [
        ("", "'' is not a category"),
        ("tea,,snacks", "'' is not a category"),
        ("tea\x01", "is not a category"),
        ("x" * 256, "is not a category"),
        (",".join(f"c{n}" for n in range(11)), "at most 10 categories"),
        (",".join(str(n) * 200 for n in range(5)), "longer than 900 characters"),
    ],
)
async def test_invalid_category_is_422_naming_the_parameter(
    client: httpx.AsyncClient, category: str, message: str
) -> None:
    response = await client.get("/v1/users/c1/recommendations", params={"category": category})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("query.category: ") and message in detail


async def test_openapi_documents_the_category_parameter(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    (category,) = [p for p in operation["parameters"] if p["name"] == "category"]
    assert category["in"] == "query" and not category["required"]
    assert "separate with commas" in category["description"]
