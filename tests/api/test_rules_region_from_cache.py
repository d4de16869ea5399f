"""A rule scoped to a region reaches a customer through the region read with their cached row
(`cache.USER_LIST`, no second round trip), on `/recommendations` and buy-again alike; a
customer without a cached row is still looked up."""

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from api.test_api_rules import client, create, ids, shop, until
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers

__all__ = ["client", "shop"]  # fixtures


async def test_region_rules_follow_the_cached_rows_region(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await insert_customers(pool, [StoredCustomer("c8", "south")])
    written = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    cached = [{"product_id": f"p{n}", "score": round(1 - n / 10, 2)} for n in range(1, 7)]
    await put_current(pool, USERS, "c8", cached, written)
    await create(
        client, {"kind": "pin", "region": "north", "target": {"products": ["p8"]}, "slot": 1}
    )
    await create(client, {"kind": "filter", "region": "south", "target": {"products": ["p2"]}})

    async def north_pinned() -> list[str] | None:
        served = await ids(client, "/v1/users/c1/recommendations", limit=4)
        return served if served[:1] == ["p8"] else None

    assert await until(north_pinned) == ["p8", "p1", "p2", "p3"]  # c1: north, cached
    assert await ids(client, "/v1/users/c8/recommendations", limit=4) == ["p1", "p3", "p4", "p5"]
    assert "p8" in await ids(client, "/v1/users/c2/recommendations", limit=4)  # north, no row
    assert "p8" in await ids(client, "/v1/users/c1/buy-again", limit=4)
    assert "p2" not in await ids(client, "/v1/users/c8/buy-again", limit=6)
