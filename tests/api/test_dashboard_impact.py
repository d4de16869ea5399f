"""The dashboard's "What recommendations earned" panel and the online accuracy beside the
offline one, in a real browser (headless Chromium) over the real database."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

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
from support.browser import dashboard, wait_until
from support.helpers import serve

ADMIN_KEY = "impact-admin-key"
NOW = datetime.now(UTC)


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
    async with dashboard(stack, ADMIN_KEY) as (page, errors):
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
        assert errors == []
