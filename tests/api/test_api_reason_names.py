"""Reasons people read: the api's answers name the products their reasons cite (`bought
Family Cushion 95, Oak Lamp`), keep the ids in `reason_product_ids`, fall back to the id for
a product without a name, and look names up without a query per answer (real database)."""

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.app import create_app
from mgrecs.api.product_names import NameMemo
from mgrecs.api.reason_names import named_reason
from mgrecs.common.db import create_pool
from mgrecs.common.settings import Settings
from mgrecs.engine.content import CatalogueCandidate, like_reason
from mgrecs.engine.new_items import bought_with_reason
from mgrecs.engine.reasons import ReasonNames
from mgrecs.engine.repurchase import bought_reason
from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.helpers import asgi_client

NAMES = {"P0015": "Family Cushion 95", "P0039": "Oak Lamp", "P0168": "Tea, green"}
UNNAMED = ["P0200", "P0201"]
CACHED = [
    {"product_id": "P0001", "score": 0.9, "reason": "bought P0015, P0039, P0168"},
    {"product_id": "P0002", "score": 0.8, "reason": "bought together with P0039"},
    {"product_id": "P0003", "score": 0.7, "reason": "bought P0200, P0015"},
    {"product_id": "P0004", "score": 0.6, "reason": "bought nothing-known, P9999"},
    {"product_id": "P0005", "score": 0.5, "reason": None},
]


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> None:
    """Named products, two without a name (P0200 with an empty one), c1's cached list citing
    them by id, P0015's similar items."""
    await insert_products(
        pool,
        [StoredProduct(p, n) for p, n in NAMES.items()]
        + [StoredProduct("P0200", None), StoredProduct("P0201", "")]
        + [StoredProduct(f"P000{i}", f"Item {i}") for i in range(1, 6)],
    )
    await insert_customers(pool, [StoredCustomer("c1", "north")])
    now = datetime.now(UTC)
    await insert_orders(
        pool,
        [StoredOrder("o1", "c1", now - timedelta(days=2), [StoredLine(0, "P0015")])],
    )
    await put_current(pool, USERS, "c1", CACHED)
    await put_current(
        pool,
        SIMILAR,
        "P0015",
        [
            {"product_id": "P0039", "score": 0.8, "reason": "bought together with P0015"},
            {"product_id": "P0201", "score": 0.6, "reason": "same brand as P0201"},
        ],
    )


@pytest.fixture
async def app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"new_items_share": 0.0}))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


async def test_reasons_read_names_and_keep_the_ids_apart(
    shop: None, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/users/c1/recommendations")
    assert response.status_code == 200, response.text
    served = [(i["reason"], i["reason_product_ids"]) for i in response.json()["items"]]
    assert served == [
        ("bought Family Cushion 95, Oak Lamp, Tea, green", ["P0015", "P0039", "P0168"]),
        ("bought together with Oak Lamp", ["P0039"]),
        ("bought P0200, Family Cushion 95", ["P0200", "P0015"]),  # no name: its id
        ("bought nothing-known, P9999", []),  # no product: left as it is
        (None, []),
    ]
    assert not any("P0015" in str(reason) for reason, _ in served)


async def test_similar_items_and_buy_again_are_named_too(
    shop: None, client: httpx.AsyncClient
) -> None:
    similar = (await client.get("/v1/products/P0015/similar")).json()["items"]
    assert [(i["reason"], i["reason_product_ids"]) for i in similar] == [
        ("bought together with Family Cushion 95", ["P0015"]),
        ("same brand as P0201", ["P0201"]),  # an empty name is no name
    ]
    again = (await client.get("/v1/users/c1/buy-again", params={"limit": 3})).json()["items"]
    assert again[0]["product_id"] == "P0015" and again[0]["reason_product_ids"] == []
    assert again[0]["reason"].startswith("bought once")  # the customer's own: no ids in it
    assert again[1]["reason"] == "bought Family Cushion 95, Oak Lamp, Tea, green"
    assert again[1]["reason_product_ids"] == ["P0015", "P0039", "P0168"]


async def test_buy_again_completes_with_the_discovery_items_as_recommendations_names_them(
    shop: None, client: httpx.AsyncClient
) -> None:
    """The discovery products that complete a buy-again list carry the reasons and ids
    `/recommendations` serves for them (named, unnamed, no product, no reason alike)."""
    listed = (await client.get("/v1/users/c1/recommendations")).json()["items"]
    again = (await client.get("/v1/users/c1/buy-again", params={"limit": 6})).json()["items"]
    assert [i["slot"] for i in again] == ["buy-again"] + ["cache"] * 5
    fields = ("product_id", "score", "reason", "reason_product_ids")
    assert [{f: i[f] for f in fields} for i in again[1:]] == listed


async def test_known_names_cost_no_query_and_a_rename_shows_after_the_ttl(
    shop: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    app = create_app(
        settings.model_copy(update={"new_items_share": 0.0, "rules_catalogue_refresh_seconds": 1})
    )
    async with asgi_client(app) as client:
        await client.get("/v1/users/c1/recommendations")
        reads = app.state.names.reads
        assert reads == 1  # one batched read for the whole answer
        for _ in range(3):
            await client.get("/v1/users/c1/recommendations")
        assert app.state.names.reads == reads  # remembered: no query
        await pool.execute("UPDATE products SET name = 'Oak Lamp XL' WHERE product_id = 'P0039'")
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while True:
            items = (await client.get("/v1/users/c1/recommendations")).json()["items"]
            if "Oak Lamp XL" in items[1]["reason"] or datetime.now(UTC) > deadline:
                break
            await asyncio.sleep(0.2)
        assert items[1]["reason"] == "bought together with Oak Lamp XL"


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


async def test_an_expired_name_is_served_while_one_background_read_renews_it(
    shop: None, pool: asyncpg.Pool
) -> None:
    memo = NameMemo(pool, ttl_seconds=0.2)
    try:
        assert await memo.names(["P0039", "P0015"]) == {
            "P0039": "Oak Lamp",
            "P0015": "Family Cushion 95",
        }
        assert memo.reads == 1
        await pool.execute("UPDATE products SET name = 'Oak Lamp XL' WHERE product_id = 'P0039'")
        await asyncio.sleep(0.25)  # both expired
        # Many answers asking for expired names: each served the name it had, at once (no
        # query of its own), and one background read, GATHER_SECONDS later, takes them all.
        for _ in range(20):
            assert await memo.names(["P0039"]) == {"P0039": "Oak Lamp"}
            assert await memo.names(["P0015", "P0039"]) == {
                "P0015": "Family Cushion 95",
                "P0039": "Oak Lamp",
            }
        assert memo.reads == 1
        await _until(lambda: memo.reads == 2)
        await memo.renewed()
        assert await memo.names(["P0039"]) == {"P0039": "Oak Lamp XL"}
        assert memo.reads == 2
        # An id never seen is still read in the answer that asks for it.
        assert await memo.names(["P0168"]) == {"P0168": "Tea, green"}
        assert memo.reads == 3
    finally:
        await memo.close()


async def test_a_failed_background_read_keeps_the_names(shop: None, settings: Settings) -> None:
    own = await create_pool(settings.database_url, min_size=0, max_size=1)
    memo = NameMemo(own, ttl_seconds=0.1)
    try:
        assert await memo.names(["P0039"]) == {"P0039": "Oak Lamp"}
        await own.close()  # the database out of reach from here on
        await asyncio.sleep(0.15)
        assert await memo.names(["P0039"]) == {"P0039": "Oak Lamp"}
        await _until(lambda: memo.reads == 2)
        await memo.renewed()
        assert await memo.names(["P0039"]) == {"P0039": "Oak Lamp"}  # the read failed
    finally:
        await memo.close()


async def test_visitors_lists_carry_the_field_empty(shop: None, client: httpx.AsyncClient) -> None:
    items = (await client.get("/v1/visitors/recommendations")).json()["items"]
    assert items and all(i["reason_product_ids"] == [] for i in items)


# -- the naming itself, over the reasons the engine writes -----------------------------------

ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=12)
names = st.none() | st.text(min_size=1, max_size=30)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    catalogue=st.dictionaries(ids, names, min_size=1, max_size=6),
    cited=st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True),
    unknown=ids,
)
def test_every_engine_reason_is_named_with_its_ids(
    catalogue: dict[str, str | None], cited: list[int], unknown: str
) -> None:
    known = list(catalogue)
    chosen = list(dict.fromkeys(known[i % len(known)] for i in cited))
    shown = [catalogue[p] or p for p in chosen]
    reason_names = ReasonNames.of(chosen)
    bought = reason_names.first[0] + "".join(reason_names.after[1:])
    assert named_reason(bought, catalogue).text == "bought " + ", ".join(shown)
    assert named_reason(bought, catalogue).product_ids == chosen
    first, name = chosen[0], shown[0]
    candidate = CatalogueCandidate("x", None, {}, bought_with=0)
    for reason, expected in [
        (bought_with_reason(first), f"new, bought together with {name}"),
        (like_reason(first, candidate, ["brand", "size"]), f"same brand, size as {name}"),
        (like_reason(first, candidate, []), f"same category as {name}"),
    ]:
        assert named_reason(reason, catalogue).text == expected
        assert named_reason(reason, catalogue).product_ids == [first]
    if unknown not in catalogue:  # not a product: the reason stays as it is
        for reason in (f"bought together with {unknown}", f"bought {unknown}"):
            assert named_reason(reason, catalogue).text == reason
            assert named_reason(reason, catalogue).product_ids == []


@given(
    reason=st.sampled_from(["popular in north", "promoted", "new in tea", "trending"])
    | st.builds(bought_reason, st.integers(1, 50), st.floats(0, 2000))
)
def test_reasons_without_products_are_left_alone(reason: str) -> None:
    catalogue = {"north": "a product", "tea": "another"}
    assert named_reason(reason, catalogue).text == reason


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(min_size=1, max_size=60).filter(lambda n: "\x00" not in n))
async def test_any_stored_name_is_served_as_it_is(
    shop: None, pool: asyncpg.Pool, settings: Settings, name: str
) -> None:
    """Whatever the catalogue calls a product, the answer carries it verbatim (JSON-safe)."""
    await pool.execute("UPDATE products SET name = $1 WHERE product_id = 'P0039'", name)
    async with asgi_client(create_app(settings.model_copy(update={"new_items_share": 0.0}))) as c:
        items = (await c.get("/v1/users/c1/recommendations")).json()["items"]
    assert items[1]["reason"] == f"bought together with {name}"
    assert items[1]["reason_product_ids"] == ["P0039"]


# The forms as regular expressions: what `named_reason` matched until it told them apart by
# prefixes (faster); it must still name every text as they do.
_SPEC_ONE_PRODUCT = (
    re.compile(r"^(?P<lead>(?:new, )?bought together with )(?P<id>.+)$", re.DOTALL),
    re.compile(r"^(?P<lead>same .+? as )(?P<id>.+)$", re.DOTALL),
)


def _spec_named_reason(reason: str, catalogue: dict[str, str | None]) -> tuple[str, list[str]]:
    for form in _SPEC_ONE_PRODUCT:
        if (found := form.match(reason)) and found["id"] in catalogue:
            return found["lead"] + (catalogue[found["id"]] or found["id"]), [found["id"]]
    if reason.startswith("bought "):
        parts = reason[len("bought ") :].split(", ")
        ids = [p for p in parts if p in catalogue]
        if ids:
            return "bought " + ", ".join(catalogue.get(p) or p for p in parts), ids
    return reason, []


pieces = st.sampled_from(
    ["bought ", "bought together with ", "new, ", "same ", " as ", "as", ", ", " ", "\n", "x"]
)


@hypothesis_settings(max_examples=500, deadline=None)
@given(
    parts=st.lists(pieces | ids, min_size=0, max_size=6),
    catalogue=st.dictionaries(ids | st.sampled_from(["as", "x", " as x", "as x"]), names),
)
@example(parts=["same ", " as ", "P1"], catalogue={})  # no attribute before " as "
@example(parts=["same ", "x", " as "], catalogue={})  # no product after it
@example(parts=["bought together with "], catalogue={})
@example(parts=["bought together with ", "P1", ", ", "P2"], catalogue={"P2": "Oak"})
def test_the_forms_are_told_apart_as_the_regular_expressions_did(
    parts: list[str], catalogue: dict[str, str | None]
) -> None:
    reason = "".join(parts)
    catalogue.update({p: None for p in parts[-1:] if p.strip()})  # the last part a product
    found = named_reason(reason, catalogue)
    assert (found.text, found.product_ids) == _spec_named_reason(reason, catalogue)
