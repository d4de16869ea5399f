"""The operator CLI, run as an operator would: through typer, configured by MGRECS_* env.

These tests are synchronous because the commands run their own event loop.
"""

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.common import topics
from mgrecs.common.schemas import OrderEvent, ScheduleTick
from mgrecs.common.settings import Settings, get_settings
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.store.databases import create_database, drop_database
from support.helpers import read_topic

runner = CliRunner()


def _records(settings: Settings, name: str) -> list[Any]:
    return asyncio.run(read_topic(settings.kafka_bootstrap, topics.topic(name, settings)))


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def _sample(out: Path, customers: int, products: int, orders: int) -> None:
    args = ["sample-data", str(out), "--customers", str(customers)]
    args += ["--products", str(products), "--orders", str(orders)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def test_sample_data_is_deterministic_and_in_the_flat_format(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _sample(first, 40, 30, 100)
    _sample(second, 40, 30, 100)
    assert first.read_text() == second.read_text()
    with first.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(COLUMNS)
    assert len({row["order_id"] for row in rows}) == 100


def test_backfill_publishes_every_order_of_the_file(cli_env: Settings, tmp_path: Path) -> None:
    out = tmp_path / "orders.csv"
    _sample(out, 20, 15, 50)
    result = runner.invoke(app, ["backfill", str(out)])
    assert result.exit_code == 0, result.output
    records = _records(cli_env, topics.ORDERS)
    orders = [OrderEvent.model_validate_json(record.value) for record in records]
    assert len(orders) == 50
    assert all(record.key == order.key for record, order in zip(records, orders, strict=True))


def test_backfill_exits_non_zero_when_rows_are_rejected(cli_env: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bad.csv"
    out.write_text(
        ",".join(COLUMNS) + "\n"
        "o1,c1,p1,Milk,dairy,1.20,2,2026-11-20T10:00:00Z,north\n"
        "o2,c2,p2,Bread,bakery,2.10,-3,2026-11-20T10:00:00Z,north\n"
    )
    result = runner.invoke(app, ["backfill", str(out)])
    assert result.exit_code == 1
    assert "orders rejected 1 (1 lines)" in result.output
    assert "data quality FAILED" in result.output  # 1 of 2 lines invalid: above 5%
    published = [OrderEvent.model_validate_json(r.value) for r in _records(cli_env, topics.ORDERS)]
    assert [order.order_id for order in published] == ["o1"]
    assert len(_records(cli_env, topics.ORDERS_DLQ)) == 1


def test_tick_publishes_a_schedule_tick(cli_env: Settings) -> None:
    result = runner.invoke(app, ["tick", "retrain"])
    assert result.exit_code == 0, result.output
    records = _records(cli_env, topics.SCHEDULE_TICKS)
    ticks = [ScheduleTick.model_validate_json(record.value) for record in records]
    assert [tick.kind for tick in ticks] == ["retrain"]
    assert ticks[0].tick_id in result.output


@pytest.mark.parametrize("kind", ["refresh", "online"])
def test_tick_publishes_a_tick_of_each_kind(cli_env: Settings, kind: str) -> None:
    result = runner.invoke(app, ["tick", kind])
    assert result.exit_code == 0, result.output
    ticks = [
        ScheduleTick.model_validate_json(record.value)
        for record in _records(cli_env, topics.SCHEDULE_TICKS)
    ]
    assert [tick.kind for tick in ticks] == [kind]


def test_tick_rejects_an_unknown_kind() -> None:
    result = runner.invoke(app, ["tick", "dance"])
    assert result.exit_code == 2
    assert "retrain, refresh, infer, online" in result.output


def test_migrate_builds_the_schema_on_an_empty_database(
    postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "mgrecs_cli_migrate"
    url = asyncio.run(create_database(postgres_server_url, name))
    monkeypatch.setenv("MGRECS_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        # The cache tables are views of the current cache generation (migration 0007).
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        tables = {row[0] for row in asyncio.run(_fetch(url, query))}
        assert {
            "customers",
            "products",
            "orders",
            "order_items",
            "model_versions",
            "offline_user_recommendations",
            "offline_similar_items",
        } <= tables
        assert runner.invoke(app, ["migrate"]).exit_code == 0  # a second run is a no-op
    finally:
        get_settings.cache_clear()
        asyncio.run(drop_database(postgres_server_url, name))


def test_asyncapi_command_writes_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    assert runner.invoke(app, ["asyncapi", "--out", str(out)]).exit_code == 0
    document = json.loads(out.read_text())
    assert "OrderEvent" in json.dumps(document["components"])
