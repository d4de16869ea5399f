"""`mgrecs rules`: add, list, update, disable on the real database, validated as the API
validates (a message naming the field, nothing stored)."""

import asyncio
import json
from typing import Any

import asyncpg
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.common.settings import Settings
from mgrecs.store.products import StoredProduct, insert_products

runner = CliRunner()


async def _seed(url: str) -> None:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        await insert_products(
            pool,
            [StoredProduct("P1", "tea", "tea", 4.0), StoredProduct("P2", "pot", "kitchen", 30.0)],
        )
    finally:
        await pool.close()


def _rules(*args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["rules", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def test_add_list_update_disable(cli_env: Settings) -> None:
    asyncio.run(_seed(cli_env.database_url))
    added = runner.invoke(
        app, ["rules", "add", "boost", "--category", "tea", "--factor", "2", "--by", "ann"]
    )
    assert added.exit_code == 0, added.output
    assert "rule 1 created" in added.output
    pin = ["rules", "add", "pin", "--product", "P2", "--slot", "1", "--region", "north"]
    assert runner.invoke(app, pin).exit_code == 0
    listed = _rules()
    assert [(r["kind"], r["created_by"]) for r in listed] == [
        ("boost", "ann"),
        ("pin", listed[1]["created_by"]),
    ]
    assert listed[0]["target"] == {"categories": ["tea"]} and listed[1]["region"] == "north"

    changed = runner.invoke(app, ["rules", "update", "1", "--factor", "0.5", "--by", "bob"])
    assert changed.exit_code == 0, changed.output
    assert _rules()[0]["factor"] == 0.5 and _rules()[0]["updated_by"] == "bob"

    assert runner.invoke(app, ["rules", "disable", "2"]).exit_code == 0
    assert [r["rule_id"] for r in _rules()] == [1]
    assert [r["enabled"] for r in _rules("--all")] == [True, False]
    table = runner.invoke(app, ["rules", "list", "--all"])
    assert table.exit_code == 0 and "boost" in table.output


def test_bad_rules_name_the_field_and_store_nothing(cli_env: Settings) -> None:
    asyncio.run(_seed(cli_env.database_url))
    cases = [
        (["add", "filter", "--product", "NOPE"], "target.products"),
        (["add", "filter", "--category", "shoes"], "target.categories"),
        (["add", "boost", "--product", "P1", "--factor", "-2"], "factor"),
        (["add", "pin", "--product", "P1", "--slot", "500"], "slot"),
        (
            [
                "add",
                "boost",
                "--product",
                "P1",
                "--factor",
                "2",
                "--starts",
                "2026-12-09",
                "--ends",
                "2026-12-08",
            ],
            "ends_at",
        ),
        (["add", "filter", "--attribute", "brand"], "--attribute"),
        (["update", "7", "--factor", "2"], "no rule 7"),
    ]
    for args, field in cases:
        result = runner.invoke(app, ["rules", *args])
        assert result.exit_code != 0, args
        assert field in result.output, (args, result.output)
    assert _rules("--all") == []
