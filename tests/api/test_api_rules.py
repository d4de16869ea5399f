"""Business rules through `/v1/admin/rules`: stored with who and when, refused with a message
naming the field, and applied to every list the API serves (cache, real time, popular,
similar items, ranking, region page) within seconds of a change, without a restart."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from mgrecs.store.products import StoredProduct, insert_products
from support.fake_runtime import FakeRuntime
from support.helpers import asgi_client, serve
from support.shop import insert_three_customers

ADMIN = {"X-API-Key": "admin-secret"}
URL = "/v1/admin/rules"
CHANGE_SECONDS = 10.0
"""The issue's promise: a rule change shows in the answers within this."""


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings.api_admin_keys = "admin-secret"
    settings.api_answer_cache_seconds = 0
    async with asgi_client(create_app(settings)) as http:
        yield http


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """p1..p8 (p1-p4 tea, p5-p8 snacks; price = 10 x n); c1 (north) with a cached list of
    p1..p6, c2 (north) and c9 (south) without; similar items of p1: p2..p6; the engine's
    real-time products rt-c2-0.. are in the catalogue (as tea)."""
    products = [
        StoredProduct(f"p{n}", f"product {n}", "tea" if n <= 4 else "snacks", 10.0 * n)
        for n in range(1, 9)
    ]
    products += [StoredProduct(f"rt-c2-{n}", f"fresh {n}", "tea", 5.0) for n in range(40)]
    await insert_products(pool, products)
    await pool.execute(
        "UPDATE products SET attributes = '{\"brand\": \"Acme\"}' WHERE product_id = 'p6'"
    )
    await insert_three_customers(pool)


async def ids(client: httpx.AsyncClient, url: str, **params: Any) -> list[str]:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return [item["product_id"] for item in response.json()["items"]]


async def until(check: Any, seconds: float = CHANGE_SECONDS) -> Any:
    """`check()`'s first truthy answer, asked every 0.2 s for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await check()
        if answer or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def create(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post(URL, json=body, headers={**ADMIN, **headers})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_rule_created_through_the_api_changes_a_cache_read_within_10_s(
    shop: None, client: httpx.AsyncClient
) -> None:
    """No restart, no batch: the API's rules refresh (default 2 s) picks it up."""
    url = "/v1/users/c1/recommendations"
    assert await ids(client, url, limit=3) == ["p1", "p2", "p3"]
    await create(client, {"kind": "filter", "target": {"products": ["p2"]}})

    async def filtered() -> list[str] | None:
        served = await ids(client, url, limit=3)
        return served if "p2" not in served else None

    assert await until(filtered) == ["p1", "p3", "p4"]


async def test_create_list_update_disable_keep_who_and_when(
    shop: None, client: httpx.AsyncClient
) -> None:
    created = await create(
        client,
        {
            "kind": "boost",
            "name": "Acme week",
            "target": {"attributes": {"brand": "Acme"}},
            "factor": 3,
        },
        **{"X-Actor": "ann@example.com"},
    )
    assert created["created_by"] == created["updated_by"] == "ann@example.com"
    assert created["enabled"] is True and created["factor"] == 3.0
    rule_id = created["rule_id"]

    changed = await client.patch(f"{URL}/{rule_id}", json={"factor": 0.5}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["factor"] == 0.5 and body["created_by"] == "ann@example.com"
    assert body["updated_by"].startswith("key:") and body["updated_at"] >= created["updated_at"]

    disabled = await client.post(f"{URL}/{rule_id}/disable", headers={**ADMIN, "X-Actor": "bob"})
    assert (disabled.json()["enabled"], disabled.json()["updated_by"]) == (False, "bob")
    listed = (await client.get(URL, headers=ADMIN)).json()["rules"]
    assert [r["rule_id"] for r in listed] == [rule_id]
    enabled_only = await client.get(URL, params={"include_disabled": "false"}, headers=ADMIN)
    assert enabled_only.json()["rules"] == []
    assert (await client.get(f"{URL}/{rule_id}", headers=ADMIN)).json()["enabled"] is False
    assert (await client.get(f"{URL}/999", headers=ADMIN)).status_code == 404


async def test_rules_need_the_admin_key(client: httpx.AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    body = {"kind": "filter", "target": {"inactive": True}}
    assert (await client.post(URL, json=body)).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "filter", "target": {"products": ["nope"]}}, "target.products"),
        ({"kind": "filter", "target": {"categories": ["shoes"]}}, "target.categories"),
        ({"kind": "filter", "target": {}}, "target"),
        (
            {
                "kind": "boost",
                "target": {"products": ["p1"]},
                "factor": 2,
                "starts_at": "2026-12-08T00:00:00Z",
                "ends_at": "2026-12-08T00:00:00Z",
            },
            "ends_at",
        ),
        ({"kind": "pin", "target": {"products": ["p1"]}, "slot": 0}, "slot"),
        ({"kind": "pin", "target": {"products": ["p1"]}, "slot": 101}, "slot"),
        ({"kind": "pin", "target": {"products": ["p1", "p2"]}, "slot": 1}, "target.products"),
        ({"kind": "boost", "target": {"products": ["p1"]}, "factor": 0}, "factor"),
        ({"kind": "boost", "target": {"products": ["p1"]}, "factor": -1}, "factor"),
        ({"kind": "boost", "target": {"products": ["p1"]}}, "factor"),
        ({"kind": "boost", "target": {"products": ["p1"]}, "factor": "lots"}, "factor"),
        ({"kind": "promotion", "target": {"products": ["p1"]}, "share": 1.5}, "share"),
        ({"kind": "filter", "target": {"min_price": 20, "max_price": 10}}, "max_price"),
    ],
)
async def test_bad_rules_are_422_naming_the_field_and_nothing_is_stored(
    shop: None, client: httpx.AsyncClient, pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    response = await client.post(URL, json=body, headers=ADMIN)
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert await pool.fetchval("SELECT count(*) FROM rules") == 0


async def test_an_update_that_breaks_the_rule_is_422_and_changes_nothing(
    shop: None, client: httpx.AsyncClient
) -> None:
    created = await create(client, {"kind": "pin", "target": {"products": ["p3"]}, "slot": 1})
    response = await client.patch(f"{URL}/{created['rule_id']}", json={"slot": 500}, headers=ADMIN)
    assert response.status_code == 422 and "slot" in response.json()["detail"]
    assert (await client.get(f"{URL}/{created['rule_id']}", headers=ADMIN)).json()["slot"] == 1


async def test_every_list_obeys_the_rules(
    shop: None, client: httpx.AsyncClient, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Filters (a category, a price range, out of stock), a boost on an attribute, a pin for
    a region and a promotion, on the cache, real time, similar items, ranking and the
    region page."""
    await pool.execute("UPDATE products SET in_stock = FALSE WHERE product_id = 'rt-c2-1'")
    await create(client, {"kind": "filter", "target": {"out_of_stock": True}})
    await create(client, {"kind": "filter", "target": {"min_price": 25, "max_price": 35}})  # p3
    await create(
        client, {"kind": "boost", "target": {"attributes": {"brand": "Acme"}}, "factor": 10}
    )
    await create(
        client, {"kind": "pin", "region": "north", "target": {"products": ["p8"]}, "slot": 2}
    )
    await create(client, {"kind": "promotion", "target": {"products": ["p7"]}, "share": 0.2})

    async def cache_read() -> list[str] | None:
        served = await ids(client, "/v1/users/c1/recommendations", limit=5)
        return served if "p3" not in served else None

    # Cache: p3 filtered, p6 (Acme) boosted first, p8 pinned at 2 (north), p7 promoted at 5.
    assert await until(cache_read) == ["p6", "p8", "p1", "p2", "p7"]

    fake = FakeRuntime()
    async with serve(fake.app, settings.engine_port):
        realtime = await ids(client, "/v1/users/c2/recommendations", limit=5)
    assert realtime == ["rt-c2-0", "p8", "rt-c2-2", "rt-c2-3", "p7"]  # rt-c2-1: out of stock
    assert fake.requests[0]["numResults"] == 10  # extra candidates for the filters

    similar = await ids(client, "/v1/products/p1/similar", limit=4)
    assert similar == ["p6", "p2", "p4", "p7"]  # no region: no pin

    ranked = await client.post(
        "/v1/users/c1/rank", json={"product_ids": ["p1", "p3", "p6"]}, headers=ADMIN
    )
    # The engine is down: by popularity; p3 filtered, p6 (nobody bought it: 0 x 10) stays last.
    assert [i["product_id"] for i in ranked.json()["items"]] == ["p1", "p6"]

    south = await ids(client, "/v1/users/c9/recommendations", limit=5)
    assert "p8" not in south  # the pin is north's

    region = (await client.get("/v1/regions/north/recommendations", params={"limit": 5})).json()
    assert region["items"][1]["product_id"] == "p8" and region["items"][1]["reason"] == "pinned"

    visitor = await client.get("/v1/visitors/recommendations", params={"region": "north"})
    items = visitor.json()["items"]
    assert items[1]["product_id"] == "p8" and items[1]["reason"] == "pinned"
    assert "p3" not in [i["product_id"] for i in items]


# -- any body: 2xx or 4xx with a message, never a 500 ---------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
rule_like = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["filter", "boost", "pin", "promotion", "other"]) | json_values,
        "name": st.text(max_size=30) | json_values,
        "region": st.sampled_from(["north", "south"]) | st.text(max_size=5) | json_values,
        "target": st.fixed_dictionaries(
            {},
            optional={
                "products": st.lists(st.sampled_from(["p1", "p2", "x", ""]) | st.text(max_size=5)),
                "categories": st.lists(st.sampled_from(["tea", "snacks", "shoes"])),
                "min_price": st.floats() | json_values,
                "max_price": st.floats() | json_values,
                "out_of_stock": json_values,
                "inactive": st.booleans(),
                "attributes": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
            },
        )
        | json_values,
        "factor": st.floats() | json_values,
        "slot": st.integers() | json_values,
        "share": st.floats() | json_values,
        "starts_at": st.datetimes().map(lambda d: d.isoformat() + "Z") | json_values,
        "ends_at": st.datetimes().map(lambda d: d.isoformat() + "+14:00") | json_values,
        "enabled": json_values,
    },
)


near_valid = st.builds(
    lambda kind, products, extra, window: {
        "kind": kind,
        "target": {"products": products},
        **extra,
        **window,
    },
    st.sampled_from(["filter", "boost", "pin", "promotion"]),
    st.lists(st.sampled_from(["p1", "p2", "p6", "p7"]), min_size=1, max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "factor": st.floats(min_value=-1, max_value=2000),
            "slot": st.integers(-1, 120),
            "share": st.floats(min_value=-0.5, max_value=1.5),
            "region": st.sampled_from(["north", "south"]),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "starts_at": st.datetimes().map(lambda d: d.isoformat() + "Z"),
            "ends_at": st.datetimes().map(lambda d: d.isoformat() + "-03:00"),
        },
    ),
)


valid = st.one_of(
    st.builds(
        lambda t: {"kind": "filter", "target": t},
        st.sampled_from(
            [
                {"products": ["p2"]},
                {"categories": ["snacks"]},
                {"min_price": 70},
                {"out_of_stock": True},
            ]
        ),
    ),
    st.builds(
        lambda f, region: {
            "kind": "boost",
            "target": {"categories": ["tea"]},
            "factor": f,
            **region,
        },
        st.floats(min_value=0.001, max_value=1000),
        st.sampled_from([{}, {"region": "north"}]),
    ),
    st.builds(
        lambda p, slot: {"kind": "pin", "target": {"products": [p]}, "slot": slot},
        st.sampled_from(["p1", "p7", "p8"]),
        st.integers(1, 100),
    ),
    st.builds(
        lambda ps, share: {"kind": "promotion", "target": {"products": ps}, "share": share},
        st.lists(st.sampled_from(["p5", "p7", "p8"]), min_size=1, max_size=3),
        st.floats(min_value=0.01, max_value=1),
    ),
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=valid | near_valid | rule_like | json_values,
    patch=valid | near_valid | rule_like | json_values,
)
async def test_any_body_is_answered_with_2xx_or_a_4xx_message(
    shop: None, client: httpx.AsyncClient, body: Any, patch: Any
) -> None:
    headers = {**ADMIN, "Content-Type": "application/json"}
    created = await client.post(URL, content=json.dumps(body), headers=headers)
    assert created.status_code in (201, 422), created.text
    event(f"create answered {created.status_code}")
    assert created.json().get("detail") if created.status_code == 422 else created.json()["rule_id"]
    if created.status_code == 201:
        rule_id = created.json()["rule_id"]
        changed = await client.patch(f"{URL}/{rule_id}", content=json.dumps(patch), headers=headers)
        assert changed.status_code in (200, 422), changed.text
        assert changed.json().get("detail") if changed.status_code == 422 else True
    served = await client.get("/v1/users/c1/recommendations")
    assert served.status_code == 200


@st.composite
def previews(draw: st.DrawFn) -> tuple[Any, bool]:
    """A preview body, and whether it is plainly valid (known customer and region, a limit
    of 1-100, a valid draft or none): those must be answered 200."""
    body = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "customer": st.sampled_from(["c1", "c2", "c9", "nobody"]) | json_values,
                "region": st.sampled_from(["north", "south", "nowhere"]) | json_values,
                "limit": st.integers(-2, 120) | json_values,
            },
        )
    )
    draft = draw(st.sampled_from(["none", "valid", "other"]))
    if draft != "none":
        body["rule"] = draw(valid if draft == "valid" else near_valid | rule_like | json_values)
    plain = (
        body.get("customer", "c1") in ("c1", "c2", "c9")
        and body.get("region", "north") in ("north", "south")
        and type(body.get("limit", 10)) is int
        and 1 <= body.get("limit", 10) <= 100
        and draft != "other"
    )
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values), False
    return body, plain


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(preview=previews())
async def test_any_preview_body_is_answered_or_refused_with_a_message(
    shop: None, client: httpx.AsyncClient, preview: tuple[Any, bool]
) -> None:
    body, plain = preview
    headers = {**ADMIN, "Content-Type": "application/json"}
    answer = await client.post(f"{URL}/preview", content=json.dumps(body), headers=headers)
    event(f"preview answered {answer.status_code}")
    assert answer.status_code == 200 if plain else answer.status_code in (200, 404, 422), (
        body,
        answer.text,
    )
    if answer.status_code != 200:
        assert answer.json()["detail"], answer.text


async def test_preview_shows_a_customer_and_a_region_before_and_after(
    shop: None, client: httpx.AsyncClient
) -> None:
    await create(client, {"kind": "filter", "target": {"products": ["p1"]}})
    await until(lambda: _filtered_for_c1(client, "p1"))
    # Without a draft: no rules, then the rules in force.
    body = {"customer": "c1", "region": "north", "limit": 3}
    plain = (await client.post(f"{URL}/preview", json=body, headers=ADMIN)).json()
    assert [i["product_id"] for i in plain["customer"]["before"]] == ["p1", "p2", "p3"]
    assert [i["product_id"] for i in plain["customer"]["after"]] == ["p2", "p3", "p4"]
    assert plain["customer"]["source"] == "cache"
    assert "p1" not in [i["product_id"] for i in plain["region"]["after"]]
    # With a draft pin: the rules in force, then with the pin too; nothing stored.
    draft = {**body, "rule": {"kind": "pin", "target": {"products": ["p8"]}, "slot": 1}}
    drafted = (await client.post(f"{URL}/preview", json=draft, headers=ADMIN)).json()
    assert [i["product_id"] for i in drafted["customer"]["before"]] == ["p2", "p3", "p4"]
    assert [i["product_id"] for i in drafted["customer"]["after"]] == ["p8", "p2", "p3"]
    assert drafted["region"]["after"][0] == {
        "product_id": "p8",
        "score": 0.0,
        "reason": "pinned",
        "reason_product_ids": [],
    }
    assert len((await client.get(URL, headers=ADMIN)).json()["rules"]) == 1
    unknown = {"customer": "c1", "rule": {"kind": "pin", "target": {"products": ["x"]}, "slot": 1}}
    refused = await client.post(f"{URL}/preview", json=unknown, headers=ADMIN)
    assert refused.status_code == 422 and "target.products" in refused.json()["detail"]


async def _filtered_for_c1(client: httpx.AsyncClient, product: str) -> bool:
    return product not in await ids(client, "/v1/users/c1/recommendations", limit=3)
