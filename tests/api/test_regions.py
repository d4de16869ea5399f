"""The region page: a fixed sample of active customers, their cached lists aggregated; the
exact mode over the batch's counts; the list of regions."""

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

import asyncpg
import httpx
import pytest

from mgrecs.api import intervals, region_stats
from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.helpers import asgi_client


class MovableClock:
    """The API's clock in these tests: windows change when the test says so, not by luck."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


WINDOW = 6 * 3600
NOW = datetime.fromtimestamp((int(datetime.now(UTC).timestamp()) // WINDOW) * WINDOW, UTC)
"""The start of the window we are in (orders are placed relative to the real now)."""


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW + timedelta(hours=1))


@pytest.fixture
async def client(settings: Settings, clock: MovableClock) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings, clock=clock)) as http:
        yield http


async def add_customer(
    pool: asyncpg.Pool, customer_id: str, region: str, days_ago: float | None
) -> None:
    """A customer of `region`, with one order `days_ago` days back (none when None)."""
    await insert_customers(pool, [StoredCustomer(customer_id, region)])
    if days_ago is not None:
        at = datetime.now(UTC) - timedelta(days=days_ago)
        await insert_orders(pool, [StoredOrder(f"o-{customer_id}", customer_id, at, region=region)])


async def add_products(pool: asyncpg.Pool, *product_ids: str) -> None:
    await insert_products(
        pool, [StoredProduct(pid, f"name of {pid}", f"cat-{pid}") for pid in product_ids]
    )


async def cache(pool: asyncpg.Pool, user_id: str, scored: dict[str, float]) -> None:
    """Cache a list for `user_id` the way the batch writes it: best first."""
    items = [
        {"product_id": pid, "score": score}
        for pid, score in sorted(scored.items(), key=lambda kv: -kv[1])
    ]
    await put_current(pool, USERS, user_id, items, datetime.now(UTC).replace(tzinfo=None))


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
    assert (body["mode"], body["source"]) == ("sample", "cache")
    assert (body["sample_size"], body["population"]) == (10, 10)
    # The intervals: Wilson's 95 % score interval of 9/10, 5/10 and 1/10.
    assert body["items"] == [
        {
            "product_id": "A",
            "product_name": "name of A",
            "category": "cat-A",
            "match_rate": 90.0,
            "match_rate_low": 59.6,
            "match_rate_high": 98.2,
            "affinity": "High",
            "mean_score": round(mean(A_SCORES), 4),
            "users": 9,
            "reason": None,  # no business rule placed it
        },
        {
            "product_id": "B",
            "product_name": "name of B",
            "category": "cat-B",
            "match_rate": 50.0,
            "match_rate_low": 23.7,
            "match_rate_high": 76.3,
            "affinity": "Medium",
            "mean_score": round(mean(B_SCORES), 4),
            "users": 5,
            "reason": None,  # no business rule placed it
        },
        {
            "product_id": "C",
            "product_name": "name of C",
            "category": "cat-C",
            "match_rate": 10.0,
            "match_rate_low": 1.8,
            "match_rate_high": 40.4,
            "affinity": "Low",
            "mean_score": 0.77,
            "users": 1,
            "reason": None,  # no business rule placed it
        },
    ]
    assert datetime.fromisoformat(body["window_start"]) == NOW
    assert datetime.fromisoformat(body["window_end"]) == NOW + timedelta(hours=6)
    assert body["generation"] is None and body["computed_at"] is None


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

    assert (first["sample_size"], first["population"]) == (50, 60)
    sampled = sorted(item["product_id"].removeprefix("only-") for item in first["items"])
    assert len(sampled) == 50
    assert all(item["match_rate"] == 2.0 and item["affinity"] == "Low" for item in first["items"])
    assert second == first
    window = int(NOW.timestamp()) // WINDOW
    assert sampled == sorted(expected_sample(ids, "south", window, 50))


def sampled_ids(body: dict[str, Any]) -> set[str]:
    """With one product of its own per customer, the items name the sampled customers."""
    return {item["product_id"].removeprefix("only-") for item in body["items"]}


@pytest.fixture
async def south(pool: asyncpg.Pool) -> list[str]:
    """60 active customers of south, each recommended one product of their own only."""
    ids = [f"s{i:03d}" for i in range(60)]
    await add_products(pool, *(f"only-{cid}" for cid in ids))
    for cid in ids:
        await add_customer(pool, cid, "south", days_ago=2)
        await cache(pool, cid, {f"only-{cid}": 0.5})
    return ids


async def test_same_sample_all_window_long_and_a_new_one_in_the_next(
    south: list[str], client: httpx.AsyncClient, clock: MovableClock
) -> None:
    url = "/v1/regions/south/recommendations?limit=100"
    first = (await client.get(url)).json()
    clock.now = NOW + timedelta(hours=6) - timedelta(microseconds=1)
    last_moment = (await client.get(url)).json()
    clock.now = NOW + timedelta(hours=6)
    next_window = (await client.get(url)).json()

    window = int(NOW.timestamp()) // WINDOW
    assert last_moment == first
    assert sampled_ids(first) == set(expected_sample(south, "south", window, 50))
    assert sampled_ids(next_window) == set(expected_sample(south, "south", window + 1, 50))
    assert sampled_ids(next_window) != sampled_ids(first)
    assert datetime.fromisoformat(next_window["window_start"]) == NOW + timedelta(hours=6)


async def test_sample_size_is_the_first_customers_of_the_window_order(
    south: list[str], client: httpx.AsyncClient
) -> None:
    url = "/v1/regions/south/recommendations"
    window = int(NOW.timestamp()) // WINDOW
    small = (await client.get(url, params={"sample_size": 5, "limit": 100})).json()
    large = (await client.get(url, params={"sample_size": 20, "limit": 100})).json()
    small_again = (await client.get(url, params={"sample_size": 5, "limit": 100})).json()
    everyone = (await client.get(url, params={"sample_size": 1000, "limit": 100})).json()

    assert sampled_ids(small) == set(expected_sample(south, "south", window, 5))
    assert small["items"][0]["match_rate"] == 20.0  # 1 of 5
    assert sampled_ids(large) == set(expected_sample(south, "south", window, 20))
    assert small_again == small
    assert (everyone["sample_size"], everyone["population"]) == (60, 60)
    assert sampled_ids(everyone) == set(south)


async def test_a_larger_sample_keeps_the_customers_already_shown(
    pool: asyncpg.Pool, south: list[str], client: httpx.AsyncClient
) -> None:
    """A customer who became active after the first answer of the window may come first in
    the window's order; the customers shown stay in the sample anyway."""
    url = "/v1/regions/south/recommendations"
    small = sampled_ids((await client.get(url, params={"sample_size": 5, "limit": 100})).json())
    window = int(NOW.timestamp()) // WINDOW
    newcomer = next(
        cid
        for cid in (f"z{i}" for i in range(1000))
        if expected_sample([*south, cid], "south", window, 1) == [cid]
    )
    await add_products(pool, f"only-{newcomer}")
    await add_customer(pool, newcomer, "south", days_ago=0)
    await cache(pool, newcomer, {f"only-{newcomer}": 0.5})

    large = sampled_ids((await client.get(url, params={"sample_size": 10, "limit": 100})).json())
    assert small < large and len(large) == 10
    assert newcomer in large


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
    assert window_a.customers == expected_sample(ids, "north", 100, 50)
    assert window_b.customers == expected_sample(ids, "north", 101, 50)
    assert set(window_a.customers) != set(window_b.customers)
    assert window_a.population == window_b.population == 60


@pytest.mark.parametrize("mode", ["sample", "exact"])
async def test_unknown_region_is_404(east: None, client: httpx.AsyncClient, mode: str) -> None:
    response = await client.get(f"/v1/regions/atlantis/recommendations?mode={mode}")
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
    assert response.json()["population"] == 0
    assert response.json()["items"] == []


@pytest.mark.parametrize("limit", ["0", "101", "many"])
async def test_limit_is_validated(east: None, client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get(f"/v1/regions/east/recommendations?limit={limit}")
    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("sample_size=0", "sample_size"),
        ("sample_size=1001", "sample_size"),
        ("sample_size=-3", "sample_size"),
        ("sample_size=fifty", "sample_size"),
        ("mode=approximate", "mode"),
        ("category=", "category"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    east: None, client: httpx.AsyncClient, query: str, parameter: str
) -> None:
    response = await client.get(f"/v1/regions/east/recommendations?{query}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"query.{parameter}: ")


async def test_the_sample_size_bound_is_a_setting(
    east: None, settings: Settings, clock: MovableClock
) -> None:
    settings.region_max_sample_size = 8
    async with asgi_client(create_app(settings, clock=clock)) as http:
        over = await http.get("/v1/regions/east/recommendations?sample_size=9")
        at = await http.get("/v1/regions/east/recommendations?sample_size=8")
    assert over.status_code == 422
    assert over.json()["detail"] == "query.sample_size: Input should be less than or equal to 8"
    assert at.json()["sample_size"] == 8


async def test_category_keeps_only_those_products(east: None, client: httpx.AsyncClient) -> None:
    url = "/v1/regions/east/recommendations"
    only_b = (await client.get(url, params={"category": "cat-B"})).json()
    a_and_c = (await client.get(url, params={"category": "cat-A,cat-C"})).json()
    none = (await client.get(url, params={"category": "cat-none"})).json()
    assert [(i["product_id"], i["match_rate"]) for i in only_b["items"]] == [("B", 50.0)]
    assert [i["product_id"] for i in a_and_c["items"]] == ["A", "C"]
    assert none["items"] == [] and none["sample_size"] == 10


async def test_regions_with_their_active_customers(
    east: None, pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    await add_customer(pool, "q1", "quiet", days_ago=365)
    await add_customer(pool, "w1", "west", days_ago=89)
    await add_customer(pool, "w2", "west", days_ago=91)
    await add_customer(pool, "nowhere", "x", days_ago=1)
    await pool.execute("UPDATE customers SET region = NULL WHERE customer_id = 'nowhere'")
    response = await client.get("/v1/regions")
    assert response.status_code == 200
    body = response.json()
    assert datetime.fromisoformat(body["active_since"]) == NOW + timedelta(hours=1, days=-90)
    assert body["regions"] == [
        {"region": "east", "customers": 12, "active_customers": 10},
        {"region": "quiet", "customers": 1, "active_customers": 0},
        {"region": "west", "customers": 2, "active_customers": 1},
    ]


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


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (0, 50, 0.0, 0.0713476),  # the "rule of three"-like case: an interval, not a point
        (50, 50, 0.9286524, 1.0),
        (20, 50, 0.2760839, 0.5381856),
        (1, 1, 0.2065493, 1.0),
    ],
)
def test_wilson_interval_known_values(successes: int, trials: int, low: float, high: float) -> None:
    interval = intervals.wilson(successes, trials)
    assert interval is not None
    assert (interval.low, interval.high) == (
        pytest.approx(low, abs=1e-7),
        pytest.approx(high, abs=1e-7),
    )


@pytest.mark.parametrize("trials", [1, 2, 7, 50, 333, 1000])
def test_wilson_interval_equals_scipys(trials: int) -> None:
    from scipy.stats import binomtest

    for successes in range(0, trials + 1, max(1, trials // 17)):
        expected = binomtest(successes, trials).proportion_ci(0.95, method="wilson")
        interval = intervals.wilson(successes, trials)
        assert interval is not None
        assert (interval.low, interval.high) == (
            pytest.approx(expected.low, abs=1e-9),
            pytest.approx(expected.high, abs=1e-9),
        )


def test_match_rate_and_interval_of_an_item() -> None:
    from mgrecs.api.repository import ProductCount

    item = region_stats.region_item(ProductCount("P", 20, mean_score=0.123456), 50)
    assert (item.match_rate, item.match_rate_low, item.match_rate_high) == (40.0, 27.6, 53.8)
    assert (item.affinity, item.mean_score, item.users) == ("Medium", 0.1235, 20)


async def test_openapi_documents_the_region_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    parameters = {
        p["name"]: p
        for p in spec["paths"]["/v1/regions/{region}/recommendations"]["get"]["parameters"]
    }
    assert {"limit", "sample_size", "category", "mode"} <= set(parameters)
    assert parameters["sample_size"]["schema"]["anyOf"][0]["minimum"] == 1
    assert "/v1/regions" in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert [e["mode"] for e in schemas["RegionRecommendations"]["examples"]] == ["sample", "exact"]
    assert schemas["Regions"]["examples"]
