"""The dashboard's "What each mode costs" panel in a real browser (headless Chromium) over
the real database: each mode's day, AWS mode's bill over budget marked, self-hosted mode's
machine hours beside what AWS would have cost."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common import usage
from mgrecs.common.settings import Settings
from mgrecs.common.usage import Meter
from mgrecs.store.usage import add_usage, hour_of
from support.browser import dashboard, wait_until
from support.helpers import serve

ADMIN_KEY = "cost-admin-key"


@pytest.fixture
async def stack(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[str]:
    """This hour: AWS mode trained 10 hours (2.40 USD, over a 1 USD budget); self-hosted mode
    took 40 PutEvents calls of 400 events and spent 90 engine CPU seconds."""
    meter = Meter()
    hour = hour_of(datetime.now(UTC))
    meter.add("batch", usage.TRAINING_HOURS, 10)
    await add_usage(pool, hour, "aws", "batch", meter.take("batch"))
    meter.add("tracker", usage.PUT_EVENTS_CALLS, 40)
    meter.add("tracker", usage.EVENTS, 400)
    await add_usage(pool, hour, "self-hosted", "tracker", meter.take("tracker"))
    meter.add("engine", usage.CPU_SECONDS, 90)
    await add_usage(pool, hour, "self-hosted", "engine", meter.take("engine"))
    settings.api_admin_keys = ADMIN_KEY
    settings.daily_budget = 1.0
    async with serve(create_app(settings), free_port()) as base:
        yield base


async def test_the_panel_shows_each_modes_day(stack: str) -> None:
    async with dashboard(stack, ADMIN_KEY) as (page, errors):
        await wait_until(page, "document.querySelectorAll('#cost-table tbody tr').length === 2")
        rows = await page.eval_on_selector_all(
            "#cost-table tbody tr",
            "trs => trs.map(tr => [tr.className, ...[...tr.cells].map(td => td.textContent)])",
        )
        by_mode = {row[2]: row for row in rows}
        aws, hosted = by_mode["aws"], by_mode["self-hosted"]
        assert aws[0] == "over-budget" and aws[10] == "2.40 (over budget)"
        assert hosted[0] == "" and (hosted[3], hosted[4]) == ("40", "400")
        assert hosted[11] != "0" and hosted[13] == "90"  # machine hours, CPU seconds
        meta = await page.text_content("#cost-meta") or ""
        assert meta == "prices as of 2026-12-07; daily budget 1.00 USD"
        months = await page.eval_on_selector_all(
            "#cost-months tbody tr", "trs => trs.map(tr => tr.cells[4].textContent)"
        )
        assert "training 2.40" in months
        assert errors == []
