"""The catalogue search (`GET /v1/products`) and the dashboard's search box: products that
never sold are found by name or id, behind the read key."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from hypothesis import HealthCheck, given, strategies
from hypothesis import settings as hypothesis_settings
from playwright.async_api import async_playwright

from mgrecs.api.app import create_app
from mgrecs.api.routes.params import CONTROL, ID
from mgrecs.cli.embedded import free_port
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.settings import Settings
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.products import write_catalogue
from support.helpers import asgi_client, serve
from support.shop import insert_shop

CHROMIUM = "/usr/bin/chromium"
READ_KEY = "catalogue-read-key"
NOW = datetime.now(UTC).replace(microsecond=0)
C1_LIST = [
    {"product_id": "N-LAMP", "score": 0.9, "reason": "bought p1, p2"},
    {"product_id": "p4", "score": 0.5, "reason": "bought together with p1"},
    {"product_id": "N-NONAME", "score": 0.4, "reason": "bought an unknown, p1"},
]


async def seed(pool: asyncpg.Pool) -> None:
    """The shop (p1..p6 sold, p7 never), and a catalogue: a new lamp nobody bought, p1
    described by the company, and names with LIKE's wildcards."""
    await insert_shop(pool)
    await write_catalogue(
        pool,
        [
            ProductEvent(
                product_id="N-LAMP",
                name="Eco Lamp 201",
                category="home-garden",
                price=Decimal("39.90"),
                cost=Decimal("20.00"),
                launched_at=NOW - timedelta(days=2),
                attributes={"brand": "Lumo", "size": "M"},
                updated_at=NOW,
            ),
            ProductEvent(
                product_id="p1",
                name="Desk Lamp",
                category="home-garden",
                price=Decimal("12.00"),
                in_stock=False,
                updated_at=NOW,
            ),
            ProductEvent(product_id="N-PCT", name="100% cotton_tee", category="apparel"),
        ],
    )


async def test_search_finds_never_sold_products_by_name_or_id(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await seed(pool)
    settings.api_read_keys = READ_KEY
    key = {"X-API-Key": READ_KEY}
    async with asgi_client(create_app(settings)) as api:
        refused = await api.get("/v1/products", params={"q": "lamp"})
        lamps = (await api.get("/v1/products", params={"q": "LAMP"}, headers=key)).json()
        by_id = (await api.get("/v1/products", params={"q": "p1"}, headers=key)).json()
        apparel = await api.get("/v1/products", params={"category": "apparel"}, headers=key)
        percent = (await api.get("/v1/products", params={"q": "0%"}, headers=key)).json()
        underscore = (await api.get("/v1/products", params={"q": "p_"}, headers=key)).json()
        everything = (await api.get("/v1/products", params={"limit": 3}, headers=key)).json()
        nul = await api.get("/v1/products", params={"q": "a\x00b"}, headers=key)
        too_many = await api.get("/v1/products", params={"limit": 1000}, headers=key)
    assert refused.status_code == 401
    assert [item["product_id"] for item in lamps["items"]] == ["p1", "N-LAMP"]  # by name
    lamp = lamps["items"][1]
    assert lamp["sold"] is False and lamp["attributes"] == {"brand": "Lumo", "size": "M"}
    assert "cost" not in lamp  # the cost is the company's, not the frontend's
    assert lamps["items"][0]["sold"] is True and lamps["items"][0]["in_stock"] is False
    assert by_id["items"][0]["product_id"] == "p1"  # the exact id first
    assert [item["product_id"] for item in apparel.json()["items"]] == ["N-PCT"]
    assert [item["product_id"] for item in percent["items"]] == ["N-PCT"]
    assert underscore["items"] == []  # `_` is not a wildcard
    assert len(everything["items"]) == 3
    assert nul.status_code == 422 and too_many.status_code == 422


async def test_the_dashboard_search_box_shows_the_catalogue(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await seed(pool)
    # c1's cached list explains itself by what c1 bought (as the recipes' reasons do); a
    # product without a name keeps its id.
    await write_catalogue(pool, [ProductEvent(product_id="N-NONAME")])
    await put_current(pool, USERS, "c1", C1_LIST, datetime.now(UTC).replace(tzinfo=None))
    async with (
        serve(create_app(settings), free_port()) as base,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/dashboard")
        await page.fill("#catalogue-q", "lamp")
        await page.click("#catalogue-form button")
        deadline = time.monotonic() + 30
        while (
            await page.evaluate("document.querySelectorAll('#catalogue-table tbody tr').length")
            != 2
        ):
            assert time.monotonic() < deadline, await page.text_content("#catalogue-error")
            await asyncio.sleep(0.1)
        cells = await page.eval_on_selector_all(
            "#catalogue-table tbody tr",
            "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))",
        )
        # A customer's list: the products and the products its reasons cite, by name.
        await page.fill("#user-id", "c1")
        await page.click("#user-form button")
        while not await page.text_content("#user-meta"):
            assert time.monotonic() < deadline, await page.text_content("#user-error")
            await asyncio.sleep(0.1)
        listed = await page.eval_on_selector_all(
            "#user-table tbody tr",
            "trs => trs.map(tr => [tr.cells[0].title, tr.cells[0].querySelector('strong')"
            "?.textContent ?? null, tr.cells[2].textContent,"
            " [...tr.cells[2].querySelectorAll('.named')].map(s => s.title)])",
        )
        await browser.close()
    assert errors == []
    assert listed == [
        ["N-LAMP", "Eco Lamp 201", "bought Desk Lamp, product p2", ["p1", "p2"]],
        ["p4", "product p4", "bought together with Desk Lamp", ["p1"]],
        ["N-NONAME", None, "bought an unknown, Desk Lamp", ["p1"]],
    ]
    assert cells[1][0] == "Eco Lamp 201N-LAMP"  # the name, the id below it
    assert cells[1][6] == "never" and cells[1][7] == "brand: Lumo, size: M"
    assert cells[0][3] == "out of stock"


# -- GET /v1/products/names: the dashboard names the products of an answer ----------------


async def test_the_names_of_the_products_asked_for(settings: Settings, pool: asyncpg.Pool) -> None:
    await seed(pool)
    await write_catalogue(pool, [ProductEvent(product_id="N-BLANK", name="")])
    settings.api_read_keys = READ_KEY
    key = {"X-API-Key": READ_KEY}
    url = "/v1/products/names"
    async with asgi_client(create_app(settings)) as api:
        refused = await api.get(url, params={"id": "p1"})
        names = await api.get(
            url,
            params=[
                ("id", "p1"),
                ("id", "N-LAMP"),
                ("id", "nope"),
                ("id", "p1"),
                ("id", "N-BLANK"),
                ("id", "p,2"),
            ],
            headers=key,
        )
        none = await api.get(url, headers=key)
        too_many = await api.get(url, params=[("id", f"p{i}") for i in range(101)], headers=key)
        blank = await api.get(url, params={"id": " p1"}, headers=key)
        hundred = await api.get(url, params=[("id", f"p{i}") for i in range(100)], headers=key)
    assert refused.status_code == 401
    assert names.status_code == 200
    # Unknown and unnamed products are left out: the dashboard shows their id.
    assert names.json() == {"names": {"p1": "Desk Lamp", "N-LAMP": "Eco Lamp 201"}}
    assert none.status_code == 422 and too_many.status_code == 422 and blank.status_code == 422
    assert hundred.status_code == 200
    assert hundred.json()["names"] == {
        "p1": "Desk Lamp",
        **{f"p{i}": f"product p{i}" for i in range(2, 8)},
    }


product_ids = strategies.text(
    alphabet=strategies.characters(codec="utf-8", exclude_categories=("Cs",)),
    min_size=1,
    max_size=20,
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    asked=strategies.lists(
        strategies.sampled_from(["p1", "p2", "p7", "N-LAMP"]) | product_ids, max_size=8
    )
)
async def test_any_ids_are_named_or_refused_never_failed(
    settings: Settings, pool: asyncpg.Pool, asked: list[str]
) -> None:
    """Whatever ids are asked for: a 200 naming exactly the named catalogue products among
    them, or a 422 for an id that is not one (blank-edged, control characters...)."""
    if not await pool.fetchval("SELECT count(*) FROM products"):
        await seed(pool)
    catalogue = {
        r["product_id"]: r["name"]
        for r in await pool.fetch("SELECT product_id, name FROM products")
    }
    async with asgi_client(create_app(settings)) as api:
        response = await api.get("/v1/products/names", params=[("id", a) for a in asked])
    if not asked or not all(ID.match(a) for a in asked):
        assert response.status_code == 422
        return
    assert response.status_code == 200
    assert response.json()["names"] == {a: catalogue[a] for a in asked if catalogue.get(a)}


search_text = strategies.sampled_from(["lamp", "LAMP", "%", "_", "\\", "100%", "n-", " p1 "]) | (
    strategies.text(
        alphabet=strategies.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
    )
)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    q=strategies.none() | search_text,
    categories=strategies.lists(
        strategies.sampled_from(["home-garden", "apparel", "a,b"]) | search_text, max_size=3
    ),
    limit=strategies.none() | strategies.integers(min_value=-2, max_value=120),
)
async def test_any_search_is_answered_or_refused_never_failed(
    settings: Settings,
    pool: asyncpg.Pool,
    q: str | None,
    categories: list[str],
    limit: int | None,
) -> None:
    """Whatever the text, categories and limit: a 200 listing at most `limit` products whose
    id or name holds the text (LIKE's wildcards taken literally), or a 422 saying why."""
    if not await pool.fetchval("SELECT count(*) FROM products"):
        await seed(pool)
    params: list[tuple[str, str | int]] = [("category", c) for c in categories]
    if q is not None:
        params.append(("q", q))
    if limit is not None:
        params.append(("limit", limit))
    async with asgi_client(create_app(settings)) as api:
        response = await api.get("/v1/products", params=params)
    names = [part.strip() for c in categories for part in c.split(",")]
    valid = (
        (q is None or (len(q) <= 200 and "\x00" not in q))
        and all(name and len(name) <= 255 and not CONTROL.search(name) for name in names)
        and len(set(names)) <= 10
        and (limit is None or 1 <= limit <= 100)
    )
    assert response.status_code == (200 if valid else 422), (params, response.text)
    if response.status_code == 422:
        assert response.json()["detail"]
        return
    items = response.json()["items"]
    assert len(items) <= (limit or 20)
    text = (q or "").strip()
    if text.isascii():
        for item in items:
            assert text.lower() in f"{item['product_id']} {item['name'] or ''}".lower(), item
