"""The admin endpoints: cache invalidation and ticks over HTTP, with the admin key only."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from mgrecs.api.app import create_app
from mgrecs.common import topics
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from support.helpers import asgi_client, read_topic

ADMIN = {"X-API-Key": "admin-secret"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings.api_admin_keys = "admin-secret"
    async with asgi_client(create_app(settings)) as http:
        yield http


@pytest.fixture
async def cached(pool: asyncpg.Pool) -> None:
    """c1, c2 in north and c9 in south, each with a cached list in the current generation."""
    regions = {"c1": "north", "c2": "north", "c9": "south"}
    await insert_customers(pool, [StoredCustomer(c, r) for c, r in regions.items()])
    for user in ("c1", "c2", "c9"):
        await put_current(pool, USERS, user, [{"product_id": "p1", "score": 0.5}])


async def cached_users(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT user_id FROM offline_user_recommendations")
    return {row["user_id"] for row in rows}


async def test_invalidate_a_customer_then_a_region_then_all(
    cached: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    url = "/v1/admin/cache/invalidate"
    one = await client.post(url, json={"customer": "c1"}, headers=ADMIN)
    assert one.status_code == 200
    assert one.json() == {"generation": 1, "users": 1, "products": 0}
    assert await cached_users(pool) == {"c2", "c9"}
    c1 = await client.get("/v1/users/c1/recommendations")
    assert c1.json()["source"] != "cache"

    region = await client.post(url, json={"region": "north"}, headers=ADMIN)
    assert region.json()["users"] == 1
    assert await cached_users(pool) == {"c9"}

    everything = await client.post(url, json={"all": True}, headers=ADMIN)
    assert everything.json() == {"generation": 1, "users": 1, "products": 0}
    assert await pool.fetchval("SELECT state FROM cache_generations WHERE generation = 1") == (
        "retired"
    )
    nothing = await client.post(url, json={"all": True}, headers=ADMIN)
    assert nothing.json() == {"generation": None, "users": 0, "products": 0}


@pytest.mark.parametrize(
    "body", [{}, {"all": True, "region": "north"}, {"all": False}, {"customer": "bad\nid"}]
)
async def test_invalidate_needs_exactly_one_target(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/admin/cache/invalidate", json=body, headers=ADMIN)
    assert response.status_code == 422


async def test_invalidate_needs_the_admin_key(cached: None, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/admin/cache/invalidate", json={"all": True})
    assert response.status_code == 401


async def test_tick_is_published_with_its_id_keyed_by_kind(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.post("/v1/admin/ticks/infer", headers=ADMIN)
    assert response.status_code == 202
    sent = response.json()
    assert sent["kind"] == "infer"
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, settings)
    )
    ticks = [ScheduleTick.model_validate_json(record.value) for record in records]
    assert [(t.kind, t.tick_id) for t in ticks] == [("infer", sent["tick_id"])]
    assert [record.key for record in records] == [b"infer"]  # as the scheduler keys its own


async def test_unknown_tick_kind_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/admin/ticks/reboot", headers=ADMIN)
    assert response.status_code == 422
    assert "kind" in response.json()["detail"]
