"""The dashboard's "Margin against relevance" panel in a real browser (headless Chromium):
the active model's `margin_curve` (measured at its retrain) drawn point by point."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from playwright.async_api import Page, async_playwright

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.settings import Settings
from mgrecs.engine.margin import WEIGHTS
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from support.helpers import serve

CHROMIUM = "/usr/bin/chromium"
ADMIN_KEY = "margin-admin-key"
CURVE = {
    "recipe": "itemknn",
    "k": 10,
    "candidates": 20,
    "users": 120,
    "products_with_margin": 80,
    "points": [
        {"weight": w, "ndcg": round(0.25 - 0.05 * w, 6), "mean_margin": round(13 + 8 * w, 4)}
        for w in WEIGHTS
    ],
}


async def wait_until(page: Page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression until it is truthy (the page's CSP refuses `eval`)."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def stack(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[str]:
    """An active model whose metrics carry a margin curve; the API on a port."""
    metrics = {"recipe": "itemknn", "ndcg@10": 0.25, "margin_curve": CURVE}
    model = ModelVersion("v-margin", RECIPE, "file:///v", 10, 5, 40, metrics, datetime.now(UTC))
    await register(pool, model, promote=True, reason="first model")
    settings.api_admin_keys = ADMIN_KEY
    async with serve(create_app(settings), free_port()) as base:
        yield base


async def test_the_panel_draws_the_active_models_curve(stack: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{stack}/dashboard")
        await page.fill("#api-key", ADMIN_KEY)
        await page.click("#key-form button")
        await wait_until(page, "document.querySelectorAll('#margin-svg circle.point').length")
        points = await page.eval_on_selector_all(
            "#margin-svg circle.point",
            "cs => cs.map(c => [Number(c.dataset.weight), Number(c.dataset.ndcg),"
            " Number(c.dataset.margin)])",
        )
        assert points == [[p["weight"], p["ndcg"], p["mean_margin"]] for p in CURVE["points"]]
        cells = await page.eval_on_selector_all(
            "#margin-table tbody tr", "trs => trs.map(tr => tr.cells[0].textContent)"
        )
        assert cells == [f"{w:g}" for w in WEIGHTS]
        assert "v-margin (itemknn)" in (await page.text_content("#margin-meta") or "")
        await browser.close()
        assert errors == []
