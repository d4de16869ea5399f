"""`GET /v1/visitors/recommendations`: a visitor without a customer id gets the region's
popular and trending products, on the real database; bad parameters are a 4xx with a
message, never a 5xx."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.helpers import asgi_client

NOW = datetime.now(UTC)
CATEGORIES = {"p1": "tea", "p2": "tea", "p3": "snacks", "p4": "snacks", "p5": "tea"}
BOUGHT = {
    # product: (buyers among north's n1.., days ago)
    "p1": (5, 20),
    "p2": (4, 20),
    "p4": (4, 20),
    "p3": (3, 2),  # bought only this week: trending in the north
    "p5": (6, 20),  # the best seller, but no longer on sale
}


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    await insert_products(
        pool, [StoredProduct(p, f"product {p}", c) for p, c in CATEGORIES.items()]
    )
    await pool.execute("UPDATE products SET active = FALSE WHERE product_id = 'p5'")
    customers = [StoredCustomer(f"n{i}", "north") for i in range(6)]
    customers += [StoredCustomer("s1", "south")]
    await insert_customers(pool, customers)
    orders = [
        StoredOrder(f"o-{p}-{n}", f"n{n}", NOW - timedelta(days=days), [StoredLine(0, p)])
        for p, (buyers, days) in BOUGHT.items()
        for n in range(buyers)
    ]
    orders.append(StoredOrder("o-old", "s1", NOW - timedelta(days=400), [StoredLine(0, "p3")]))
    await insert_orders(pool, orders)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings.model_copy(update={"env": "development"}))) as c:
        yield c


async def visitor(client: httpx.AsyncClient, **params: object) -> list[tuple[str, str]]:
    response = await client.get("/v1/visitors/recommendations", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [(i["product_id"], i["reason"]) for i in body["items"]]


async def test_popular_in_the_region_with_trending_at_their_share(
    shop: None, client: httpx.AsyncClient
) -> None:
    assert await visitor(client, region="north", limit=3) == [
        ("p1", "popular in north"),
        ("p2", "popular in north"),
        ("p3", "trending in north"),
    ]
    response = await client.get("/v1/visitors/recommendations", params={"region": "north"})
    body = response.json()
    assert body["region"] == "north" and body["source"] == "popular"
    scores = [i["score"] for i in body["items"]]
    assert scores[0] == 1.0 and scores == sorted(scores, reverse=True)
    assert "p5" not in [i["product_id"] for i in body["items"]]  # inactive


async def test_without_trending_share_only_popularity(shop: None, settings: Settings) -> None:
    changed = settings.model_copy(update={"visitor_trending_share": 0.0})
    async with asgi_client(create_app(changed)) as http:
        assert [p for p, _ in await visitor(http, region="north", limit=3)] == ["p1", "p2", "p4"]


async def test_category_bounds_the_list(shop: None, client: httpx.AsyncClient) -> None:
    listed = await visitor(client, region="north", category="snacks")
    assert sorted(p for p, _ in listed) == ["p3", "p4"]


async def test_a_region_with_no_recent_purchase_gets_everywheres(
    shop: None, client: httpx.AsyncClient
) -> None:
    listed = await visitor(client, region="south", limit=2)
    assert listed == [("p1", "popular"), ("p3", "trending")]
    assert await visitor(client, limit=2) == listed


async def test_unknown_region_is_a_404_with_a_message(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/visitors/recommendations", params={"region": "mars"})
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown region mars"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"region": ""}, "region"),
        ({"region": "x" * 65}, "region"),
        ({"region": " north"}, "region"),
        ({"category": ",".join(f"c{n}" for n in range(11))}, "category"),
        ({"category": "tea\x01"}, "category"),
    ],
)
async def test_bad_parameters_are_a_422_naming_the_field(
    shop: None, client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/visitors/recommendations", params=params)
    assert response.status_code == 422, response.text
    assert f"query.{field}" in response.json()["detail"]


async def test_an_empty_shop_answers_none(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/visitors/recommendations")
    assert response.status_code == 200
    assert response.json() == {"region": None, "source": "none", "items": []}


async def test_read_key_required_like_every_read(shop: None, settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_read_keys": "visitor-key"})
    async with asgi_client(create_app(keyed)) as http:
        missing = await http.get("/v1/visitors/recommendations")
        keyed_answer = await http.get(
            "/v1/visitors/recommendations", headers={"X-API-Key": "visitor-key"}
        )
    assert missing.status_code == 401
    assert keyed_answer.status_code == 200


text = st.text(max_size=80)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    region=st.one_of(st.none(), st.sampled_from(["north", "south", "mars"]), text),
    limit=st.one_of(st.none(), st.integers(min_value=-5, max_value=150), text),
    category=st.one_of(
        st.none(), st.lists(st.one_of(st.sampled_from(["tea", "snacks"]), text), max_size=12)
    ),
)
async def test_any_parameters_get_a_2xx_or_a_4xx_with_a_message(
    shop: None,
    client: httpx.AsyncClient,
    region: str | None,
    limit: int | str | None,
    category: list[str] | None,
) -> None:
    params: list[tuple[str, str]] = []
    for name, value in (("region", region), ("limit", limit)):
        if value is not None:
            params.append((name, str(value).encode("utf-8", "replace").decode()))
    params += [("category", c.encode("utf-8", "replace").decode()) for c in category or ()]
    response = await client.get("/v1/visitors/recommendations", params=params)
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        ids = [i["product_id"] for i in response.json()["items"]]
        assert len(ids) == len(set(ids)) and len(ids) <= (int(limit) if limit else 10)
    else:
        assert response.status_code in (404, 422)
        assert isinstance(response.json()["detail"], str) and response.json()["detail"]
