"""`mgrecs cost` on the real database: today's counts priced as JSON and as a table; a
period ending before it starts refused."""

import asyncio
import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.common import usage
from mgrecs.common.db import create_pool
from mgrecs.common.settings import Settings
from mgrecs.common.usage import Meter
from mgrecs.store.usage import add_usage, hour_of


async def seed(settings: Settings) -> None:
    """AWS mode: 4 training hours and 1,000 events this hour."""
    meter = Meter()
    meter.add("batch", usage.TRAINING_HOURS, 4)
    meter.add("tracker", usage.EVENTS, 1000)
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        hour = hour_of(datetime.now(UTC))
        await add_usage(pool, hour, "aws", "batch", meter.take("batch"))
        await add_usage(pool, hour, "aws", "tracker", meter.take("tracker"))
    finally:
        await pool.close()


def test_the_cli_prices_the_counts(cli_env: Settings) -> None:
    asyncio.run(seed(cli_env))
    runner = CliRunner()

    result = runner.invoke(app, ["cost", "--json"])

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("{")]
    report = json.loads(line)
    [day] = report["days"]
    assert (day["mode"], day["counts"]["training_hours"]) == ("aws", 4)
    lines = {line["item"]: line["usd"] for line in day["lines"]}
    assert lines["training"] == pytest.approx(4 * 0.24)
    assert lines["data ingestion"] == pytest.approx(1000 * 260 / 1e9 * 0.05)
    assert report["prices"]["tps_hour"][-1] == [None, 0.05]  # JSON has no infinity
    table = runner.invoke(app, ["cost"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "2026-12-07" in table.output and "aws" in table.output
    refused = runner.invoke(app, ["cost", "--start", "2026-12-02", "--end", "2026-12-01"])
    assert refused.exit_code == 2 and "--start" in refused.output
