"""The region page: a fixed sample of active customers, their cached lists aggregated."""

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from statistics import mean

import asyncpg
import httpx
import pytest

from helpers import asgi_client
from mgrecs.api import region_stats
from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings)) as http:
        yield http


async def add_customer(
    pool: asyncpg.Pool, customer_id: str, region: str, days_ago: float | None
) -> None:
    """A customer of `region`, with one order `days_ago` days back (none when None)."""
    await pool.execute(
        "INSERT INTO customers (customer_id, region) VALUES ($1, $2)", customer_id, region
    )
    if days_ago is not None:
        await pool.execute(
            "INSERT INTO orders (order_id, customer_id, ordered_at, region)"
            " VALUES ($1, $2, $3, $4)",
            f"o-{customer_id}",
            customer_id,
            datetime.now(UTC) - timedelta(days=days_ago),
            region,
        )


async def add_products(pool: asyncpg.Pool, *product_ids: str) -> None:
    await pool.executemany(
        "INSERT INTO products (product_id, name, category) VALUES ($1, $2, $3)",
        [(pid, f"name of {pid}", f"cat-{pid}") for pid in product_ids],
    )


async def cache(pool: asyncpg.Pool, user_id: str, scored: dict[str, float]) -> None:
    """Cache a list for `user_id` the way the batch writes it: best first."""
    items = [
        {"product_id": pid, "score": score}
        for pid, score in sorted(scored.items(), key=lambda kv: -kv[1])
    ]
    await pool.execute(
        "INSERT INTO offline_user_recommendations VALUES ($1, $2, $3)",
        user_id,
        items,
        datetime.now(UTC).replace(tzinfo=None),
    )


A_SCORES = [0.91, 0.82, 0.73, 0.64, 0.55, 0.46, 0.37, 0.28, 0.19]
B_SCORES = [0.5, 0.4, 0.3, 0.2, 0.12]
C_SCORES = [0.77]


@pytest.fixture
async def east(pool: asyncpg.Pool) -> None:
    """Region east: 10 active customers; 9 got A, 5 got B, 1 got C. Two inactive customers
    (orders 200 days old / no order) whose lists hold D must never be sampled."""
    await add_products(pool, "A", "B", "C", "D")
    for i in range(10):
        await add_customer(pool, f"e{i}", "east", days_ago=1 + i)
        scored: dict[str, float] = {}
        if i < 9:
            scored["A"] = A_SCORES[i]
        if i < 5:
            scored["B"] = B_SCORES[i]
        if i == 9:
            scored["C"] = C_SCORES[0]
        await cache(pool, f"e{i}", scored)
    await add_customer(pool, "e-old", "east", days_ago=200)
    await cache(pool, "e-old", {"D": 0.99, "A": 0.1})
    await add_customer(pool, "e-never", "east", days_ago=None)
    await cache(pool, "e-never", {"D": 0.98})


async def test_match_rate_affinity_and_mean_score_are_exact(
    east: None, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/regions/east/recommendations")
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == "east"
    assert body["sample_size"] == 10
    assert body["items"] == [
        {
            "product_id": "A",
            "product_name": "name of A",
            "category": "cat-A",
            "match_rate": 90.0,
            "affinity": "High",
            "mean_score": round(mean(A_SCORES), 4),
            "users": 9,
        },
        {
            "product_id": "B",
            "product_name": "name of B",
            "category": "cat-B",
            "match_rate": 50.0,
            "affinity": "Medium",
            "mean_score": round(mean(B_SCORES), 4),
            "users": 5,
        },
        {
            "product_id": "C",
            "product_name": "name of C",
            "category": "cat-C",
            "match_rate": 10.0,
            "affinity": "Low",
            "mean_score": 0.77,
            "users": 1,
        },
    ]
    start = datetime.fromisoformat(body["window_start"])
    assert start.timestamp() % (6 * 3600) == 0
    assert start <= datetime.now(UTC) < start + timedelta(hours=6)


async def test_limit_keeps_the_best_products(east: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/regions/east/recommendations", params={"limit": 2})
    assert [item["product_id"] for item in response.json()["items"]] == ["A", "B"]


async def test_equal_match_rate_is_ordered_by_mean_score(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    await add_products(pool, "low", "high")
    for i in range(4):
        await add_customer(pool, f"w{i}", "west", days_ago=3)
        await cache(pool, f"w{i}", {"low": 0.2, "high": 0.6})
    body = (await client.get("/v1/regions/west/recommendations")).json()
    assert [(i["product_id"], i["match_rate"], i["mean_score"]) for i in body["items"]] == [
        ("high", 100.0, 0.6),
        ("low", 100.0, 0.2),
    ]


def expected_sample(customer_ids: list[str], region: str, window: int, size: int) -> list[str]:
    """The sampling rule, recomputed independently: md5(id:region:window) order."""

    def key(cid: str) -> tuple[str, str]:
        return hashlib.md5(f"{cid}:{region}:{window}".encode()).hexdigest(), cid

    return sorted(customer_ids, key=key)[:size]


async def test_large_region_samples_exactly_50_fixed_for_the_window(
    pool: asyncpg.Pool, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Each customer's list holds one product of its own, so the items reveal the sample."""
    ids = [f"s{i:03d}" for i in range(60)]
    await add_products(pool, *(f"only-{cid}" for cid in ids))
    for cid in ids:
        await add_customer(pool, cid, "south", days_ago=2)
        await cache(pool, cid, {f"only-{cid}": 0.5})

    first = (await client.get("/v1/regions/south/recommendations?limit=100")).json()
    second = (await client.get("/v1/regions/south/recommendations?limit=100")).json()

    assert first["sample_size"] == 50
    sampled = sorted(item["product_id"].removeprefix("only-") for item in first["items"])
    assert len(sampled) == 50
    assert all(item["match_rate"] == 2.0 and item["affinity"] == "Low" for item in first["items"])
    if second["window_start"] == first["window_start"]:  # a window boundary may fall between
        assert second == first
    window = int(datetime.fromisoformat(first["window_start"]).timestamp()) // (6 * 3600)
    assert sampled == sorted(expected_sample(ids, "south", window, 50))


async def test_the_sample_stays_fixed_within_the_window_as_customers_become_active(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    await add_products(pool, "X")
    for i in range(3):
        await add_customer(pool, f"m{i}", "mid", days_ago=1)
        await cache(pool, f"m{i}", {"X": 0.5})
    first = (await client.get("/v1/regions/mid/recommendations")).json()
    await add_customer(pool, "m-new", "mid", days_ago=0)
    await cache(pool, "m-new", {"X": 0.5})
    second = (await client.get("/v1/regions/mid/recommendations")).json()
    assert first["sample_size"] == 3
    if second["window_start"] == first["window_start"]:  # a window boundary may fall between
        assert second == first


async def test_the_sample_changes_with_the_window(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    from mgrecs.api.repository import Repository

    ids = [f"n{i:03d}" for i in range(60)]
    for cid in ids:
        await add_customer(pool, cid, "north", days_ago=2)
    repository = Repository(pool)
    since = datetime.now(UTC) - timedelta(days=90)
    window_a = await repository.region_sample("north", since, 100, 50)
    window_b = await repository.region_sample("north", since, 101, 50)
    assert window_a == expected_sample(ids, "north", 100, 50)
    assert window_b == expected_sample(ids, "north", 101, 50)
    assert set(window_a) != set(window_b)


async def test_unknown_region_is_404(east: None, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/regions/atlantis/recommendations")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown region atlantis"}


async def test_region_without_active_customers_is_empty(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    await add_products(pool, "X")
    await add_customer(pool, "q1", "quiet", days_ago=365)
    await cache(pool, "q1", {"X": 0.9})
    response = await client.get("/v1/regions/quiet/recommendations")
    assert response.status_code == 200
    assert response.json()["sample_size"] == 0
    assert response.json()["items"] == []


@pytest.mark.parametrize("limit", ["0", "101", "many"])
async def test_limit_is_validated(east: None, client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get(f"/v1/regions/east/recommendations?limit={limit}")
    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize(
    ("rate", "bucket"),
    [
        (100.0, "High"),
        (80.0, "High"),
        (79.9, "Medium"),
        (40.0, "Medium"),
        (39.9, "Low"),
        (0.0, "Low"),
    ],
)
def test_affinity_buckets(rate: float, bucket: str) -> None:
    assert region_stats.affinity(rate) == bucket
