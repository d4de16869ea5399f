"""Per-user and similar-items endpoints: cache, real-time engine, fallbacks, errors, health."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, strategies
from hypothesis import settings as hypothesis_settings

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.fake_runtime import FakeRuntime
from support.helpers import serve

UPDATED_AT = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
"""When the cached rows were written (UTC, as the batch writes it): after every order of the
shop, which reached the database when it was placed."""


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """Region north: c1 (cached), c2 and c3 (not cached); south: c9. Recent distinct buyers
    in north: p1 3, p3 2, p2 1; p5 was bought in north only 200 days ago."""
    await insert_products(pool, [StoredProduct(f"p{i}", f"product {i}") for i in range(1, 6)])
    regions = {"c1": "north", "c2": "north", "c3": "north", "c9": "south"}
    await insert_customers(pool, [StoredCustomer(c, r) for c, r in regions.items()])
    now = datetime.now(UTC)
    orders = [
        ("o1", "c1", 1, ["p1", "p2"]),
        ("o2", "c2", 2, ["p1", "p3"]),
        ("o3", "c3", 3, ["p1", "p3", "p3"]),
        ("o4", "c3", 200, ["p5"]),
        ("o5", "c9", 1, ["p4"]),
    ]
    await insert_orders(
        pool,
        [
            StoredOrder(
                order_id,
                customer_id,
                now - timedelta(days=days_ago),
                [StoredLine(line, pid) for line, pid in enumerate(products)],
                ingested_at=now - timedelta(days=days_ago),
            )
            for order_id, customer_id, days_ago, products in orders
        ],
    )
    await put_current(
        pool,
        USERS,
        "c1",
        [
            {"product_id": "p3", "score": 0.9, "reason": "bought together with p1"},
            {"product_id": "p4", "score": 0.5},
            {"product_id": "p5", "score": 0.25},
        ],
        UPDATED_AT,
    )
    await put_current(
        pool,
        SIMILAR,
        "p1",
        [{"product_id": "p3", "score": 0.8}, {"product_id": "p2", "score": 0.4}],
        UPDATED_AT,
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[FakeRuntime]:
    fake = FakeRuntime()
    async with serve(fake.app, settings.engine_port):
        yield fake


async def test_cached_user_recommendations(shop: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/c1/recommendations", params={"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert body.pop("cache_age_seconds") >= 0  # the generation's age
    assert body == {
        "user_id": "c1",
        "source": "cache",
        "updated_at": UPDATED_AT.isoformat(),
        "items": [
            # the cached reason names p1 by id; the answer by name, the id apart
            {
                "product_id": "p3",
                "score": 0.9,
                "reason": "bought together with product 1",
                "reason_product_ids": ["p1"],
            },
            {"product_id": "p4", "score": 0.5, "reason": None, "reason_product_ids": []},
        ],
        "model_version": None,  # known for customers in an experiment (test_experiments.py)
        "experiment": None,
        "stale": False,
    }


async def test_user_without_cache_row_gets_the_engine_answer(
    shop: None, client: httpx.AsyncClient, engine: FakeRuntime, settings: Settings
) -> None:
    response = await client.get("/v1/users/c2/recommendations", params={"limit": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "realtime"
    assert body["updated_at"] is None
    assert body["items"] == [
        {"product_id": "rt-c2-0", "score": 1.0, "reason": "fresh", "reason_product_ids": []},
        {"product_id": "rt-c2-1", "score": 0.9, "reason": None, "reason_product_ids": []},
        {"product_id": "rt-c2-2", "score": 0.8, "reason": None, "reason_product_ids": []},
    ]
    assert engine.requests == [
        {"campaignArn": settings.user_campaign_arn, "userId": "c2", "numResults": 3}
    ]


POPULAR_IN_NORTH = [
    {"product_id": "p1", "score": 1.0, "reason": "popular in north", "reason_product_ids": []},
    {
        "product_id": "p3",
        "score": round(2 / 3, 4),
        "reason": "popular in north",
        "reason_product_ids": [],
    },
    {
        "product_id": "p2",
        "score": round(1 / 3, 4),
        "reason": "popular in north",
        "reason_product_ids": [],
    },
]


async def test_engine_down_falls_back_to_regional_popularity(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/users/c2/recommendations")
    assert response.status_code == 200
    assert response.json()["source"] == "popular"
    assert response.json()["items"] == POPULAR_IN_NORTH


async def test_engine_error_falls_back_to_regional_popularity(
    shop: None, client: httpx.AsyncClient, engine: FakeRuntime
) -> None:
    response = await client.get("/v1/users/c3/recommendations")
    assert [r["userId"] for r in engine.requests] == ["c3"]
    assert response.json()["source"] == "popular"
    assert response.json()["items"] == POPULAR_IN_NORTH


async def _order_after_the_cache(pool: asyncpg.Pool, customer_id: str) -> None:
    """An order that reached the database after the customer's cached row was written."""
    order = StoredOrder("o-new", customer_id, datetime.now(UTC), [StoredLine(0, "p4")])
    await insert_orders(pool, [order])


async def test_cache_row_older_than_an_order_yields_to_the_engine(
    shop: None, client: httpx.AsyncClient, engine: FakeRuntime, pool: asyncpg.Pool
) -> None:
    before = (await client.get("/v1/users/c1/recommendations", params={"limit": 2})).json()
    await _order_after_the_cache(pool, "c1")
    after = (await client.get("/v1/users/c1/recommendations", params={"limit": 2})).json()
    assert before["source"] == "cache"
    assert after["source"] == "realtime"
    assert after["updated_at"] is None
    assert [item["product_id"] for item in after["items"]] == ["rt-c1-0", "rt-c1-1"]
    assert [r["userId"] for r in engine.requests] == ["c1"]


async def test_cache_row_older_than_a_cancellation_yields_to_the_engine(
    shop: None, client: httpx.AsyncClient, engine: FakeRuntime, pool: asyncpg.Pool
) -> None:
    """The engine already forgot the cancelled purchase; the cached list has not."""
    before = (await client.get("/v1/users/c1/recommendations", params={"limit": 2})).json()
    await pool.execute(
        "UPDATE orders SET status = 'cancelled', revised_at = now() WHERE order_id ="
        " (SELECT min(order_id) FROM orders WHERE customer_id = 'c1')"
    )
    after = (await client.get("/v1/users/c1/recommendations", params={"limit": 2})).json()
    assert (before["source"], after["source"]) == ("cache", "realtime")


async def test_cache_row_older_than_an_order_still_serves_when_the_engine_is_down(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await _order_after_the_cache(pool, "c1")
    body = (await client.get("/v1/users/c1/recommendations", params={"limit": 2})).json()
    assert body["source"] == "cache"
    assert body["updated_at"] == UPDATED_AT.isoformat()
    assert [item["product_id"] for item in body["items"]] == ["p3", "p4"]


async def test_answers_name_the_model_version_that_made_them(
    shop: None, client: httpx.AsyncClient, engine: FakeRuntime, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "UPDATE cache_generations SET model_version = 'v-cache' WHERE state = 'current'"
    )
    await register(
        pool, ModelVersion("v-active", RECIPE, "file:///nowhere", 0, 0, 0), promote=True, reason=""
    )
    cached = (await client.get("/v1/users/c1/recommendations")).json()
    realtime = (await client.get("/v1/users/c2/recommendations")).json()
    assert (cached["source"], cached["model_version"]) == ("cache", "v-cache")
    assert (realtime["source"], realtime["model_version"]) == ("realtime", "v-active")
    # similar items alike: p1 has a cached list, p2 is answered by the engine
    cached = (await client.get("/v1/products/p1/similar")).json()
    realtime = (await client.get("/v1/products/p2/similar")).json()
    assert (cached["source"], cached["model_version"]) == ("cache", "v-cache")
    assert (realtime["source"], realtime["model_version"]) == ("realtime", "v-active")


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example sets the age
)
@given(hours=strategies.floats(min_value=0, max_value=24 * 30))
async def test_whatever_the_cache_age_it_serves_and_says_whether_it_is_stale(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool, hours: float
) -> None:
    """The engine is down: the cached row answers at any age, stale past the TTL (6 h)."""
    await pool.execute(
        "UPDATE cache_generations SET completed_at = now() - make_interval(secs => $1)",
        hours * 3600,
    )
    ready = await client.get("/readyz")
    body = (await client.get("/v1/users/c1/recommendations")).json()
    assert ready.status_code == 200
    assert body["source"] == "cache" and body["items"]
    assert hours * 3600 - 0.1 <= body["cache_age_seconds"] <= hours * 3600 + 60
    if abs(hours - 6) > 0.01:  # the age moves on while the request runs
        assert body["stale"] is (hours > 6)


async def test_unknown_user_is_404(shop: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/nobody/recommendations")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown user nobody"}


async def test_cached_similar_products(shop: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/products/p1/similar")
    assert response.status_code == 200
    body = response.json()
    assert body.pop("cache_age_seconds") >= 0
    assert body == {
        "product_id": "p1",
        "source": "cache",
        "updated_at": UPDATED_AT.isoformat(),
        "items": [
            {"product_id": "p3", "score": 0.8, "reason": None, "reason_product_ids": []},
            {"product_id": "p2", "score": 0.4, "reason": None, "reason_product_ids": []},
        ],
        "model_version": None,  # the test's generation names none
        "stale": False,
    }


async def test_product_without_cache_row_gets_the_engine_answer(
    shop: None, client: httpx.AsyncClient, engine: FakeRuntime, settings: Settings
) -> None:
    response = await client.get("/v1/products/p2/similar", params={"limit": 2})
    body = response.json()
    assert body["source"] == "realtime"
    assert [item["product_id"] for item in body["items"]] == ["rt-p2-0", "rt-p2-1"]
    assert engine.requests == [
        {"campaignArn": settings.similar_campaign_arn, "itemId": "p2", "numResults": 2}
    ]


async def test_similar_with_engine_down_and_no_cache_comes_from_the_catalogue(
    shop: None, client: httpx.AsyncClient
) -> None:
    """p2 has no cached list and the engine is down: the catalogue answers (p1 was bought
    with it; the products have no category, so nothing else is like it)."""
    response = await client.get("/v1/products/p2/similar")
    assert response.status_code == 200
    assert response.json() == {
        "product_id": "p2",
        "source": "catalogue",
        "updated_at": None,
        "items": [
            {
                "product_id": "p1",
                "score": 0.1,
                "reason": "bought together with product 2",
                "reason_product_ids": ["p2"],
            }
        ],
        "model_version": None,  # the catalogue's: no model made it
        "stale": False,
        "cache_age_seconds": None,
    }


async def test_similar_with_engine_down_and_nothing_alike_is_empty(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/products/p4/similar")
    assert response.status_code == 200
    assert response.json() == {
        "product_id": "p4",
        "source": "none",
        "updated_at": None,
        "items": [],
        "model_version": None,
        "stale": False,
        "cache_age_seconds": None,
    }


async def test_unknown_product_is_404(shop: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/products/p404/similar")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown product p404"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/c1/recommendations?limit=0",
        "/v1/users/c1/recommendations?limit=101",
        "/v1/users/c1/recommendations?limit=ten",
        "/v1/products/p1/similar?limit=-1",
        "/v1/products/p1/similar?limit=1000",
    ],
)
async def test_limit_is_validated(shop: None, client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query.limit: ")


async def test_too_long_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/users/{'x' * 256}/recommendations")
    assert response.status_code == 422
    assert "user_id" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/users/%00/recommendations", "user_id"),
        ("/v1/users/a%0Ab/recommendations", "user_id"),
        ("/v1/products/%00x/similar", "product_id"),
        ("/v1/regions/%00/recommendations", "region"),
        ("/v1/regions/%20north/recommendations", "region"),
    ],
)
async def test_control_characters_in_ids_are_422(
    shop: None, client: httpx.AsyncClient, path: str, parameter: str
) -> None:
    """PostgreSQL refuses NUL in text: such ids must be turned away before any query."""
    response = await client.get(path)
    assert response.status_code == 422
    assert parameter in response.json()["detail"]


async def test_healthz_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_database_down_is_503_without_a_stack_trace(settings: Settings) -> None:
    from mgrecs.cli.embedded import free_port

    down = settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/none"}
    )
    app = create_app(down)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as http,
    ):
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        users = await http.get("/v1/users/c1/recommendations")
    assert health.status_code == 200  # alive: a restart would not bring the database back
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert users.status_code == 503
    assert users.json() == {"detail": "database unavailable"}


async def test_metrics_count_requests_per_route(shop: None, client: httpx.AsyncClient) -> None:
    """Counted and timed per route (the middleware keeps each label set's series: the
    second request must land in the same ones as the first)."""
    route = 'route="/v1/users/{user_id}/recommendations"'

    def sample(text: str, prefix: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    counted = f'mgrecs_api_requests_total{{method="GET",{route},status="200"}} '
    timed = f'mgrecs_api_request_seconds_count{{method="GET",{route}}} '
    before = (await client.get("/metrics")).text
    await client.get("/v1/users/c1/recommendations")
    await client.get("/v1/users/c1/recommendations")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert sample(metrics.text, counted) == sample(before, counted) + 2
    assert sample(metrics.text, timed) == sample(before, timed) + 2


async def test_openapi_documents_the_endpoints_with_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {
        "/v1/users/{user_id}/recommendations",
        "/v1/products/{product_id}/similar",
        "/v1/regions/{region}/recommendations",
        "/healthz",
    } <= set(spec["paths"])
    assert spec["components"]["schemas"]["RegionRecommendations"]["examples"]


async def test_after_the_engine_looked_down_calls_skip_it_for_a_while(
    shop: None, client: httpx.AsyncClient, settings: Settings
) -> None:
    """A down engine costs its timeout once, not on every request of the cool-down."""
    first = await client.get("/v1/users/c2/recommendations")
    fake = FakeRuntime()
    async with serve(fake.app, settings.engine_port):
        second = await client.get("/v1/users/c2/recommendations")
    assert first.json()["source"] == second.json()["source"] == "popular"
    assert fake.requests == []
