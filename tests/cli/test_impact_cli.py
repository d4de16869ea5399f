"""`mgrecs impact` on the real database: the report per model version as JSON and as a
table; bad dimensions refused."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.common.db import create_pool
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.served import write_served

NOW = datetime.now(UTC)


async def seed(settings: Settings) -> None:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        await insert_products(pool, [StoredProduct("P1"), StoredProduct("P2")])
        served = ServedList(
            served_id="s1",
            served_at=NOW - timedelta(days=2),
            endpoint="user",
            customer_id="C1",
            product_ids=["P1"],
            source="cache",
            model_version="v3",
        )
        await write_served(pool, [served])
        lines = [StoredLine(0, "P1", 2, 3.0), StoredLine(1, "P2", 1, 1.0)]
        await insert_orders(pool, [StoredOrder("o1", "C1", NOW - timedelta(days=1), lines)])
    finally:
        await pool.close()


def test_the_cli_reports_attributed_revenue(cli_env: Settings) -> None:
    asyncio.run(seed(cli_env))
    runner = CliRunner()

    result = runner.invoke(app, ["impact", "--json"])

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("{")]
    report = json.loads(line)
    groups = {g["key"]["model_version"]: g for g in report["groups"]}
    assert groups["v3"]["attributed"]["revenue"] == 6.0
    assert report["total"]["baseline"]["revenue"] == 1.0
    table = runner.invoke(app, ["impact", "--group-by", "source"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "cache" in table.output and "6.00" in table.output
    refused = runner.invoke(app, ["impact", "--group-by", "colour"])
    assert refused.exit_code == 2 and "colour" in refused.output
