"""`GET /v1/users/{id}/buy-again` over the real database: the customer's own products ranked
by distinct orders and recency with their reasons, the active version's repurchase statistics,
cancelled orders and inactive products left out, completed by the discovery list; keys,
validation, unknown customers, and no 5xx whatever the input."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import asyncpg
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.app import create_app
from mgrecs.api.buy_again import (
    SHORT_HISTORY,
    ranked_in_numpy,
    ranked_in_python,
    ranked_purchases,
)
from mgrecs.api.repository import PurchaseHistory
from mgrecs.api.schemas.users import BuyAgainItem
from mgrecs.batch.buy_again import BuyAgainFit, save_buy_again
from mgrecs.common.schemas import OrderEvent, OrderStatus
from mgrecs.common.settings import Settings
from mgrecs.engine.repurchase import (
    SECONDS_PER_DAY,
    BuyAgainParams,
    RepurchaseStats,
    buy_again_scores,
)
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import RECIPE, ModelVersion, promote, register
from mgrecs.store.orders import write_orders
from support.helpers import asgi_client

NOW = datetime.now(UTC).replace(microsecond=0)
"""The api's clock in these tests; orders are placed days before it."""
READ_KEY = "buy-again-read-key"


def order(
    order_id: str,
    customer: str,
    days_ago: float,
    lines: list[tuple[str, int]],
    status: OrderStatus = "placed",
    updated: int = 0,
) -> OrderEvent:
    return OrderEvent(
        order_id=order_id,
        ordered_at=NOW - timedelta(days=days_ago),
        updated_at=NOW - timedelta(days=days_ago) + timedelta(minutes=updated),
        status=status,
        customer={"customer_id": customer, "region": "north"},
        lines=[
            {"product_id": product, "quantity": quantity, "price": Decimal("2.50")}
            for product, quantity in lines
        ],
    )


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """c1 bought coffee (p1) in 5 orders, the last 3 weeks ago; p3 in 2 orders (10 and 30
    days ago); 24 of p2 in one order yesterday; p4 once 300 days ago; p8 (no longer on sale)
    in 3 orders. A cancelled order (p1, p5) and a returned one (p6) do not count. c2 and c3
    bought p7 (the region's most popular product). c1 has a cached discovery list: p3, p6, p7."""
    orders = [order(f"coffee{n}", "c1", 21 * n, [("p1", 1)]) for n in range(1, 6)]
    orders += [
        order("o-p3a", "c1", 10, [("p3", 1)]),
        order("o-p3b", "c1", 30, [("p3", 2)]),
        order("o-p2", "c1", 1, [("p2", 24)]),
        order("o-p4", "c1", 300, [("p4", 1)]),
        *(order(f"o-p8-{n}", "c1", 5 * n, [("p8", 1)]) for n in range(1, 4)),
        order("o-cancel", "c1", 2, [("p1", 1), ("p5", 1)]),
        order("o-return", "c1", 4, [("p6", 1)]),
        order("o-c2", "c2", 3, [("p7", 1)]),
        order("o-c3", "c3", 6, [("p7", 1)]),
    ]
    await write_orders(pool, orders)
    await write_orders(
        pool,
        [
            order("o-cancel", "c1", 2, [("p1", 1), ("p5", 1)], status="cancelled", updated=5),
            order("o-return", "c1", 4, [("p6", 1)], status="returned", updated=5),
        ],
    )
    await pool.execute("UPDATE products SET active = FALSE WHERE product_id = 'p8'")
    await insert_customers(pool, [StoredCustomer("c7", "north")])
    # Written after the orders reached the database, so the row is not outdated.
    await put_current(
        pool,
        USERS,
        "c1",
        [
            {"product_id": "p3", "score": 0.9, "reason": "bought together with p1"},
            {"product_id": "p6", "score": 0.6},
            {"product_id": "p7", "score": 0.4},
        ],
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings, clock=lambda: NOW)) as http:
        yield http


async def buy_again(client: httpx.AsyncClient, user: str, limit: int) -> httpx.Response:
    return await client.get(f"/v1/users/{user}/buy-again", params={"limit": limit})


async def test_history_is_ranked_by_distinct_orders_and_recency_with_reasons(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await buy_again(client, "c1", 4)
    assert response.status_code == 200
    body = response.json()
    assert [(i["product_id"], i["reason"], i["orders"]) for i in body["items"]] == [
        ("p1", "bought 5 times, last 3 weeks ago", 5),
        ("p3", "bought twice, last 10 days ago", 2),
        ("p2", "bought once, yesterday", 1),  # 24 of it: quantity is not frequency
        ("p4", "bought once, 10 months ago", 1),  # once too, but long ago
    ]
    assert {i["slot"] for i in body["items"]} == {"buy-again"}
    scores = [i["score"] for i in body["items"]]
    assert scores[0] == 1.0 and scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert body["items"][0]["last_ordered_at"] == (NOW - timedelta(days=21)).isoformat().replace(
        "+00:00", "Z"
    )
    assert (body["discovery_source"], body["repurchase_version"]) == (None, None)


async def test_cancelled_returned_and_inactive_products_are_left_out(
    shop: None, client: httpx.AsyncClient
) -> None:
    items = (await buy_again(client, "c1", 4)).json()["items"]
    products = [i["product_id"] for i in items]
    assert not {"p5", "p6", "p8"} & set(products)
    assert items[0]["orders"] == 5  # the cancelled order held p1 too


async def test_discovery_completes_the_list_without_duplicates(
    shop: None, client: httpx.AsyncClient
) -> None:
    body = (await buy_again(client, "c1", 6)).json()
    assert [(i["product_id"], i["slot"]) for i in body["items"]] == [
        ("p1", "buy-again"),
        ("p3", "buy-again"),
        ("p2", "buy-again"),
        ("p4", "buy-again"),
        ("p6", "cache"),  # p3, first in the cached list, is already there
        ("p7", "cache"),
    ]
    assert body["items"][4]["orders"] is None
    assert body["discovery_source"] == "cache"
    assert body["cache_age_seconds"] >= 0


async def test_a_customer_without_history_gets_the_discovery_list(
    shop: None, client: httpx.AsyncClient
) -> None:
    """c7 never ordered and has no cached list; the engine is down: regional popularity."""
    body = (await buy_again(client, "c7", 3)).json()
    assert body["discovery_source"] == "popular"
    assert [(i["product_id"], i["slot"]) for i in body["items"]][:1] == [("p7", "popular")]
    assert all(i["slot"] == "popular" for i in body["items"])


async def test_unknown_customer_is_404_as_for_recommendations(
    shop: None, client: httpx.AsyncClient
) -> None:
    again = await buy_again(client, "nobody", 5)
    recommendations = await client.get("/v1/users/nobody/recommendations")
    assert (again.status_code, again.json()) == (404, {"detail": "unknown user nobody"})
    assert recommendations.json() == again.json()


async def test_the_active_versions_statistics_and_parameters_score_the_history(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """The active version says p2 is re-bought by everyone every day and p1 by nobody, and
    decays fast: yesterday's p2 goes first. A newer inactive version's say nothing."""
    for version, active in (("v-active", True), ("v-candidate", False)):
        await register(pool, ModelVersion(version, RECIPE, "x", 1, 1, 1), promote=active, reason="")
    products = ["p1", "p2", "p3", "p4"]
    async with pool.acquire() as conn:
        await save_buy_again(
            conn,
            "v-active",
            BuyAgainFit(
                BuyAgainParams(half_life_days=7.0, repeat_weight=1.0, due_weight=1.0),
                RepurchaseStats(np.array([0.01, 1.0, 0.5, 0.5]), np.array([60.0, 1.0, 9, 9])),
                products,
            ),
        )
        await save_buy_again(
            conn,
            "v-candidate",
            BuyAgainFit(BuyAgainParams(), RepurchaseStats(np.ones(4), np.full(4, 30.0)), products),
        )
    body = (await buy_again(client, "c1", 4)).json()
    assert body["repurchase_version"] == "v-active"
    assert [i["product_id"] for i in body["items"]][:2] == ["p2", "p3"]
    assert body["items"][0]["reason"] == "bought once, yesterday"


# -- the figures the api holds ---------------------------------------------------------------

FIGURES_PRODUCTS = ["p1", "p2", "p3", "p4"]
P2_FIRST = RepurchaseStats(np.array([0.01, 1.0, 0.5, 0.5]), np.array([60.0, 1.0, 9, 9]))
"""p2 re-bought by everyone every day, p1 by nobody: yesterday's p2 comes first."""
P1_FIRST = RepurchaseStats(np.array([1.0, 0.01, 0.5, 0.5]), np.array([21.0, 60.0, 9, 9]))
"""p1 re-bought by everyone every 3 weeks (it was last bought 3 weeks ago), p2 by nobody."""
FAST = BuyAgainParams(half_life_days=7.0, repeat_weight=1.0, due_weight=1.0)


async def fit_figures(pool: asyncpg.Pool, version: str, stats: RepurchaseStats) -> None:
    async with pool.acquire() as conn:
        await save_buy_again(conn, version, BuyAgainFit(FAST, stats, FIGURES_PRODUCTS))


async def first_item(client: httpx.AsyncClient) -> tuple[str | None, str]:
    body = (await buy_again(client, "c1", 4)).json()
    return body["repurchase_version"], body["items"][0]["product_id"]


async def test_each_answer_scores_with_the_served_versions_latest_figures(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """The api holds the repurchase figures between requests: each answer still scores with
    the served version's as last fitted, whatever happened since the previous one (a
    promotion, a rollback, the same version fitted again, its figures pruned)."""
    assert await first_item(client) == (None, "p1")  # no version: the defaults, most orders first
    for version in ("v1", "v2"):
        await register(pool, ModelVersion(version, RECIPE, "x", 1, 1, 1), promote=False, reason="")
    await fit_figures(pool, "v1", P2_FIRST)
    await fit_figures(pool, "v2", P1_FIRST)
    await promote(pool, "v1", "")
    assert await first_item(client) == ("v1", "p2")
    await promote(pool, "v2", "")
    assert await first_item(client) == ("v2", "p1")
    await promote(pool, "v1", "")  # a rollback
    assert await first_item(client) == ("v1", "p2")
    await fit_figures(pool, "v1", P1_FIRST)  # the same version fitted again
    assert await first_item(client) == ("v1", "p1")
    await pool.execute("DELETE FROM repurchase_params WHERE model_version = 'v1'")  # pruned
    assert await first_item(client) == (None, "p1")


async def test_keys_are_required_when_configured(shop: None, settings: Settings) -> None:
    settings.api_read_keys = READ_KEY
    async with asgi_client(create_app(settings, clock=lambda: NOW)) as client:
        missing = await client.get("/v1/users/c1/buy-again")
        wrong = await client.get("/v1/users/c1/buy-again", headers={"X-API-Key": "wrong"})
        right = await client.get("/v1/users/c1/buy-again", headers={"X-API-Key": READ_KEY})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.json()["detail"].startswith("missing API key")
    assert right.json()["items"][0]["product_id"] == "p1"


async def test_rate_limited_like_the_other_reads(shop: None, settings: Settings) -> None:
    settings.api_rate_limit_per_second = 0.01
    async with asgi_client(create_app(settings, clock=lambda: NOW)) as client:
        first = await client.get("/v1/users/c1/buy-again")
        second = await client.get("/v1/users/c1/buy-again")
    assert (first.status_code, second.status_code) == (200, 429)
    assert int(second.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "query.limit: Input should be greater than or equal to 1"),
        ("101", "query.limit: Input should be less than or equal to 100"),
        ("ten", "query.limit: Input should be a valid integer"),
    ],
)
async def test_limit_is_validated_with_a_message(
    shop: None, client: httpx.AsyncClient, limit: str, message: str
) -> None:
    response = await client.get("/v1/users/c1/buy-again", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


async def test_requests_and_answers_are_counted(shop: None, client: httpx.AsyncClient) -> None:
    route = 'route="/v1/users/{user_id}/buy-again",status="200"} '

    async def counted() -> tuple[float, float]:
        text = (await client.get("/metrics")).text
        found = [0.0, 0.0]
        for line in text.splitlines():
            if line.startswith('mgrecs_api_requests_total{method="GET",' + route):
                found[0] = float(line.rsplit(" ", 1)[1])
            if line.startswith('mgrecs_api_answers_total{endpoint="buy-again",source="history"}'):
                found[1] = float(line.rsplit(" ", 1)[1])
        return found[0], found[1]

    before = await counted()
    await buy_again(client, "c1", 2)
    after = await counted()
    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 1.0)


async def test_openapi_documents_the_endpoint(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/users/{user_id}/buy-again"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BuyAgainList"
    }
    assert "404" in operation["responses"] and "422" in operation["responses"]
    assert spec["components"]["schemas"]["BuyAgainList"]["examples"]


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    user=st.one_of(st.sampled_from(["c1", "c2", "nobody"]), st.text(max_size=300)),
    limit=st.one_of(st.integers(min_value=-10, max_value=200), st.text(max_size=10)),
)
async def test_no_user_or_limit_gets_a_5xx(
    shop: None, client: httpx.AsyncClient, user: str, limit: int | str
) -> None:
    path = quote(user.encode("utf-8", "surrogatepass"), safe="")
    response = await client.get(f"/v1/users/{path}/buy-again", params={"limit": str(limit)})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        body = response.json()
        ids = [i["product_id"] for i in body["items"]]
        assert len(ids) == len(set(ids)) and 0 < len(ids) <= int(limit)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    purchases=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=500),
            st.floats(min_value=-2, max_value=5000),
            st.floats(min_value=0, max_value=1),
            st.floats(min_value=0, max_value=400),
        ),
        max_size=40,
    ),
    half_life=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1000)),
    limit=st.integers(min_value=1, max_value=100),
)
def test_any_history_ranks_into_a_valid_list(
    purchases: list[tuple[int, float, float, float]], half_life: float | None, limit: int
) -> None:
    """Whatever the orders, ages (a clock behind an order included), rates and intervals:
    at most `limit` distinct products, best first (ties: more orders, more recent, by id),
    scores in [0, 1], each with its reason."""
    history = _history_of(purchases, BuyAgainParams(half_life_days=half_life))
    items = ranked_purchases(history, NOW, limit)
    orders = np.array(history.orders, dtype=np.float64)
    # The ages as the ranking sees them: read back from the timestamps (float rounding).
    days = (NOW.timestamp() - np.array(history.last_at)) / SECONDS_PER_DAY
    rates, intervals = np.array(history.repeat_rates), np.array(history.interval_days)
    raw = buy_again_scores(orders, days, rates, intervals, history.params)
    ids = history.product_ids
    expected = sorted(range(len(ids)), key=lambda n: (-raw[n], -orders[n], days[n], ids[n]))
    assert [i["product_id"] for i in items] == [ids[n] for n in expected[:limit]]
    assert len(items) == min(limit, len(purchases))
    assert len({i["product_id"] for i in items}) == len(items)
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert all(i["reason"].startswith("bought ") for i in items)


def _history_of(
    purchases: list[tuple[int, float, float, float]], params: BuyAgainParams
) -> PurchaseHistory:
    """(orders, days ago, repeat rate, interval days) per product as the api holds them."""
    last_at = [NOW.timestamp() - ago * SECONDS_PER_DAY for _, ago, _, _ in purchases]
    return PurchaseHistory(
        [f"p{n}" for n in range(len(purchases))],
        [orders for orders, _, _, _ in purchases],
        last_at,
        [rate for _, _, rate, _ in purchases],
        [interval for _, _, _, interval in purchases],
        params,
        None,
    )


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    purchases=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=500),
            st.one_of(st.floats(min_value=-2, max_value=5000), st.integers(0, 30)),
            st.floats(min_value=0, max_value=1),
            st.floats(min_value=0, max_value=400),
        ),
        max_size=4 * SHORT_HISTORY,
    ),
    params=st.builds(
        BuyAgainParams,
        half_life_days=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1000)),
        repeat_weight=st.floats(min_value=0, max_value=1),
        due_weight=st.floats(min_value=0, max_value=1),
        frequency_power=st.floats(min_value=0, max_value=3),
    ),
)
def test_a_history_ranks_in_python_as_numpy_does(
    purchases: list[tuple[int, float, float, float]], params: BuyAgainParams
) -> None:
    """The plain-Python ranking of a history (ties included: whole days, equal orders) is
    numpy's, so SHORT_HISTORY changes no answer: the same scores but for the last bit (numpy's
    vectorised power, on AVX-512 machines, is not the C library's: 1 call in 20 differs by
    one unit in the last place), and the same order but where two scores are that close."""
    history = _history_of(purchases, params)
    days = [(NOW.timestamp() - last) / SECONDS_PER_DAY for last in history.last_at]
    in_python, python_scores = ranked_in_python(history, days)
    in_numpy, numpy_scores = ranked_in_numpy(history, days)
    assert python_scores == pytest.approx(numpy_scores, rel=1e-12, abs=0)
    assert sorted(in_python) == sorted(in_numpy) == list(range(len(purchases)))
    for mine, theirs in zip(in_python, in_numpy, strict=True):
        if mine != theirs:  # only a near-tie may swap
            assert python_scores[mine] == pytest.approx(python_scores[theirs], rel=1e-12, abs=0)


def test_a_long_history_ranks_with_numpy_as_a_short_one_would() -> None:
    """Past SHORT_HISTORY products the list comes from numpy, ranked as in Python."""
    purchases = [(1 + n % 7, float(n % 40), (n % 10) / 10, 10.0 + n % 30) for n in range(200)]
    history = _history_of(purchases, BuyAgainParams(half_life_days=30.0, due_weight=0.3))
    days = [(NOW.timestamp() - last) / SECONDS_PER_DAY for last in history.last_at]
    order, scores = ranked_in_python(history, days)
    items = ranked_purchases(history, NOW, 50)
    assert [i["product_id"] for i in items] == [history.product_ids[n] for n in order[:50]]
    assert items[0]["score"] == 1.0
    assert [i["score"] for i in items] == [
        round(scores[n] / scores[order[0]], 4) for n in order[:50]
    ]


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_score_past_floats_range_ranks_as_numpy_has_it() -> None:
    """Where `orders ** frequency_power` overflows a float, the list is numpy's (inf)."""
    history = _history_of([(500, 1.0, 0.5, 10.0), (2, 1.0, 0.5, 10.0)], BuyAgainParams())
    huge = PurchaseHistory(**{**history.__dict__, "params": BuyAgainParams(frequency_power=200)})
    assert [i["product_id"] for i in ranked_purchases(huge, NOW, 2)] == ["p0", "p1"]


@hypothesis_settings(max_examples=300, deadline=None)
@given(microseconds=st.integers(min_value=0, max_value=4_102_444_800 * 10**6))
def test_an_epoch_time_serialises_as_its_utc_datetime(microseconds: int) -> None:
    """The items carry epoch seconds (`extract(epoch ...)::float8` of a timestamp, to the
    microsecond) that validation turns into the time: the JSON of
    `datetime.fromtimestamp(seconds, UTC)`, as served before."""
    seconds = microseconds / 10**6
    fields = {"product_id": "p", "score": 1.0, "slot": "buy-again", "orders": 1}
    served = BuyAgainItem.model_validate({**fields, "last_ordered_at": seconds})
    expected = BuyAgainItem(**fields, last_ordered_at=datetime.fromtimestamp(seconds, UTC))
    assert served.model_dump_json() == expected.model_dump_json()
