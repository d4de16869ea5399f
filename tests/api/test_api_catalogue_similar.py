"""Similar items of products no model knows (never sold, or launched since the last
retrain): with no cached list and nothing from the engine, the catalogue answers, on the
real database: first co-purchases, then the same category by shared attributes, then the
most sold; never an inactive or out-of-stock product."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import Request
from fastapi.responses import JSONResponse

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.cache import SIMILAR, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from support.fake_runtime import FakeRuntime
from support.helpers import asgi_client, serve

NOW = datetime.now(UTC)
ASKED = {"brand": "Leaf", "size": "100g", "origin": "IN"}
PRODUCTS: dict[str, tuple[str | None, dict[str, Any], bool, bool]] = {
    # id: (category, attributes, active, in stock)
    "asked": ("tea", ASKED, True, True),
    "t-both": ("tea", {"brand": "Leaf", "size": "100g", "origin": "CN"}, True, True),
    "t-brand": ("tea", {"brand": "Leaf", "size": "250g"}, True, True),
    "t-popular": ("tea", {"brand": "Other"}, True, True),
    "t-quiet": ("tea", {}, True, True),
    "t-out": ("tea", ASKED, True, False),
    "t-off": ("tea", ASKED, False, True),
    "s-snack": ("snacks", ASKED, True, True),
    "n-first": ("tea", {"brand": "Other"}, True, True),
    "bare": (None, {}, True, True),
}
UNKNOWN_TO_THE_ENGINE = {"asked", "n-first", "bare"}
ORDERS = {
    # order: (customer, products)
    "o1": ("c1", ["t-popular", "t-quiet"]),
    "o2": ("c2", ["t-popular"]),
    "o3": ("c3", ["n-first", "s-snack"]),
}


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    for product_id, (category, attributes, active, in_stock) in PRODUCTS.items():
        await pool.execute(
            "INSERT INTO products (product_id, name, category, attributes, active, in_stock)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            product_id,
            f"product {product_id}",
            category,
            attributes,
            active,
            in_stock,
        )
    await insert_customers(pool, [StoredCustomer(c, "north") for c, _ in ORDERS.values()])
    await insert_orders(
        pool,
        [
            StoredOrder(
                order,
                customer,
                NOW - timedelta(days=2),
                [StoredLine(line, p) for line, p in enumerate(products)],
            )
            for order, (customer, products) in ORDERS.items()
        ],
    )


class ModelRuntime(FakeRuntime):
    """The engine's model: knows every product but those never sold or launched since."""

    async def recommendations(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("itemId") in UNKNOWN_TO_THE_ENGINE:
            self.requests.append(body)
            return JSONResponse({"itemList": [], "recommendationId": "RID-0"})
        return await super().recommendations(_Replay(request, body))  # type: ignore[arg-type]


class _Replay:
    """A request whose JSON body was read already."""

    def __init__(self, request: Request, body: dict[str, Any]) -> None:
        self._body = body

    async def json(self) -> dict[str, Any]:
        return self._body


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[ModelRuntime]:
    fake = ModelRuntime()
    async with serve(fake.app, settings.engine_port):
        yield fake


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """No slot for new products: the answer is the catalogue's alone."""
    async with asgi_client(
        create_app(settings.model_copy(update={"new_items_share": 0.0}))
    ) as http:
        yield http


async def similar(client: httpx.AsyncClient, product_id: str, **params: object) -> dict[str, Any]:
    response = await client.get(f"/v1/products/{product_id}/similar", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_never_sold_product_gets_its_category_by_shared_attributes(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    body = await similar(client, "asked")
    assert body["source"] == "catalogue"
    assert [(i["product_id"], i["reason"]) for i in body["items"]] == [
        ("t-both", "same brand, size as product asked"),
        ("t-brand", "same brand as product asked"),
        ("t-popular", "same category as product asked"),  # sold twice
        ("n-first", "same category as product asked"),  # once
        ("t-quiet", "same category as product asked"),  # once, and a later id
    ]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 0.1 for s in scores)
    assert engine.requests == []  # never sold: the catalogue knows better


async def test_inactive_out_of_stock_and_other_categories_are_never_listed(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    listed = {i["product_id"] for i in (await similar(client, "asked", limit=50))["items"]}
    assert not listed & {"asked", "t-out", "t-off", "s-snack", "bare"}


async def test_first_co_purchases_come_first(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    body = await similar(client, "n-first", limit=3)
    assert body["source"] == "catalogue"
    assert [(i["product_id"], i["reason"]) for i in body["items"]] == [
        ("s-snack", "bought together with product n-first"),  # another category, bought with it
        ("t-popular", "same brand as product n-first"),
        ("t-quiet", "same category as product n-first"),  # sold once, before those never sold
    ]
    assert [r["itemId"] for r in engine.requests] == ["n-first"]  # sold: the engine first


async def test_the_limit_bounds_the_answer(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    body = await similar(client, "asked", limit=2)
    assert [i["product_id"] for i in body["items"]] == ["t-both", "t-brand"]


async def test_a_sold_product_the_engine_knows_keeps_its_answer(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    body = await similar(client, "t-popular", limit=2)
    assert body["source"] == "realtime"


async def test_a_product_never_sold_gets_the_catalogue_even_if_the_engine_knows_it(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    """The engine's back-off knows its category, price and name, the catalogue its
    attributes: t-both (in the engine's catalogue at the last retrain) shares asked's."""
    body = await similar(client, "t-both", limit=1)
    assert body["source"] == "catalogue"
    assert [(i["product_id"], i["reason"]) for i in body["items"]] == [
        ("asked", "same brand, size as product t-both")
    ]
    assert engine.requests == []


async def test_a_cached_list_keeps_its_answer(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await put_current(pool, SIMILAR, "asked", [{"product_id": "t-quiet", "score": 0.5}])
    body = await similar(client, "asked")
    assert body["source"] == "cache"
    assert [i["product_id"] for i in body["items"]] == ["t-quiet"]


async def test_with_the_engine_down_the_catalogue_answers(
    shop: None, client: httpx.AsyncClient
) -> None:
    body = await similar(client, "asked", limit=1)
    assert body["source"] == "catalogue"
    assert [i["product_id"] for i in body["items"]] == ["t-both"]


async def test_nothing_alike_is_an_empty_answer(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    body = await similar(client, "bare")
    assert body["source"] == "none" and body["items"] == []


async def test_unknown_product_keeps_its_404(
    shop: None, client: httpx.AsyncClient, engine: ModelRuntime
) -> None:
    response = await client.get("/v1/products/nowhere/similar")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown product nowhere"}


async def test_rules_apply_to_the_catalogue_answer(
    shop: None, settings: Settings, engine: ModelRuntime
) -> None:
    """A filter on a product keeps it out of the catalogue's list too."""
    settings.api_admin_keys = "admin-secret"
    settings.api_answer_cache_seconds = 0
    async with asgi_client(create_app(settings)) as http:
        response = await http.post(
            "/v1/admin/rules",
            headers={"X-API-Key": "admin-secret"},
            json={"kind": "filter", "target": {"products": ["t-both"]}},
        )
        assert response.status_code == 201, response.text
        for _ in range(100):
            listed = [i["product_id"] for i in (await similar(http, "asked"))["items"]]
            if "t-both" not in listed:
                break
            await asyncio.sleep(0.1)
    assert listed[:2] == ["t-brand", "t-popular"]
