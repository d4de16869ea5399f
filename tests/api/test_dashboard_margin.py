"""The dashboard's "Margin against relevance" panel in a real browser (headless Chromium):
the active model's `margin_curve` (measured at its retrain) drawn point by point."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.settings import Settings
from mgrecs.engine.margin import WEIGHTS
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from support.browser import dashboard, wait_until
from support.helpers import serve

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
    async with dashboard(stack, ADMIN_KEY) as (page, errors):
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
        assert errors == []
