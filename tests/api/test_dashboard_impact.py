"""The dashboard's "What recommendations earned" panel and the online accuracy beside the
offline one, in a real browser (headless Chromium) over the real database."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from playwright.async_api import Page, async_playwright

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings
from mgrecs.store import online_metrics
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from mgrecs.store.online_metrics import OnlineMetrics
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.served import write_served
from support.helpers import serve

CHROMIUM = "/usr/bin/chromium"
ADMIN_KEY = "impact-admin-key"
NOW = datetime.now(UTC)


async def wait_until(page: Page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression until it is truthy (the page's CSP refuses `eval`)."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def stack(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[str]:
    """Two versions, each served to a customer who then bought; v2 with online figures."""
    for n, version in enumerate(("v1", "v2")):
        metrics = {"ndcg@10": 0.2 + n / 10}
        trained = NOW - timedelta(days=5 - n)
        model = ModelVersion(version, RECIPE, "file:///v", 10, 5, 40, metrics, trained)
        await register(pool, model, promote=True, reason="")
    await online_metrics.save(pool, "v2", NOW.date(), OnlineMetrics(60, 0.05, 0.2, 0.15))
    await insert_products(pool, [StoredProduct("P1"), StoredProduct("P2")])
    await write_served(
        pool,
        [
            ServedList(
                served_id=f"s-{version}",
                served_at=NOW - timedelta(days=3),
                endpoint="user",
                customer_id=customer,
                product_ids=["P1"],
                source="cache",
                model_version=version,
            )
            for version, customer in (("v1", "C1"), ("v2", "C2"))
        ],
    )
    await insert_orders(
        pool,
        [
            StoredOrder("o1", "C1", NOW - timedelta(days=2), [StoredLine(0, "P1", 2, 10.0)]),
            StoredOrder("o2", "C2", NOW - timedelta(days=1), [StoredLine(0, "P1", 1, 4.0)]),
            StoredOrder("o3", "C2", NOW - timedelta(days=1), [StoredLine(0, "P2", 1, 7.0)]),
        ],
    )
    settings.api_admin_keys = ADMIN_KEY
    async with serve(create_app(settings), free_port()) as base:
        yield base


async def test_the_panels_draw_attributed_revenue_and_online_accuracy(stack: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{stack}/dashboard")
        await page.fill("#api-key", ADMIN_KEY)
        await page.click("#key-form button")
        await wait_until(page, "document.querySelectorAll('#impact-table tbody tr').length === 2")
        cells = await page.eval_on_selector_all(
            "#impact-table tbody tr",
            "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))",
        )
        assert cells == [["v1", "20.00", "1", "2"], ["v2", "4.00", "1", "1"]]
        points = await page.eval_on_selector_all(
            "#impact-svg circle.point",
            "cs => cs.map(c => [c.dataset.version, c.dataset.day, Number(c.dataset.value)])",
        )
        days = [(NOW - timedelta(days=d)).date().isoformat() for d in (2, 1)]
        assert sorted(points) == [["v1", days[0], 20.0], ["v2", days[1], 4.0]]
        meta = await page.text_content("#impact-meta") or ""
        assert meta.startswith("attributed 24.00 of 31.00 revenue (window 7")
        await wait_until(
            page, "document.querySelectorAll('#models-svg circle.online-point').length"
        )
        online = await page.eval_on_selector_all(
            "#models-svg circle.online-point",
            "cs => cs.map(c => [c.dataset.version, Number(c.dataset.value)])",
        )
        assert online == [["v2", 0.15]]
        rows = await page.eval_on_selector_all(
            "#models-table tbody tr",
            "trs => trs.map(tr => [tr.cells[0].textContent,"
            " tr.cells[9].textContent, tr.cells[10].textContent])",
        )
        assert rows == [["v2", "0.150", "60"], ["v1", "–", "–"]]
        await browser.close()
        assert errors == []
