"""`mgrecs experiment`: the report of a running API, as JSON and as tables, and the API's
refusal passed on."""

import asyncio
import json

import asyncpg
import pytest
from typer.testing import CliRunner

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.cli.main import app
from mgrecs.common.settings import Settings
from support.experiments import EXPERIMENT, plant
from support.helpers import serve

runner = CliRunner()


async def test_the_report_as_json_and_as_tables(
    cli_env: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MGRECS_API_ADMIN_KEYS", "k1, k2")
    served = cli_env.model_copy(update={"experiments": [EXPERIMENT], "api_admin_keys": "k1"})
    await plant(pool, "control", 300, ctr=0.05, conversion=0.02, seed=1)
    await plant(pool, "treatment", 300, ctr=0.12, conversion=0.02, seed=2)
    async with serve(create_app(served), free_port()) as url:
        as_json = await asyncio.to_thread(
            runner.invoke, app, ["experiment", "ab1", "--api", url, "--mde", "0.5", "--json"]
        )
        tables = await asyncio.to_thread(runner.invoke, app, ["experiment", "ab1", "--api", url])
        refused = await asyncio.to_thread(
            runner.invoke, app, ["experiment", "ab1", "--api", url, "--mde", "0"]
        )
        unknown = await asyncio.to_thread(runner.invoke, app, ["experiment", "zz", "--api", url])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["mde"] == 0.5 and report["baseline"] == "control"
    assert report["comparisons"][0]["ctr"]["significant"]
    assert tables.exit_code == 0, tables.output
    assert "vs control" in tables.output and "sample too small" in tables.output
    assert "realtime:1200" in tables.output
    rows = [line.split("│") for line in tables.output.splitlines() if "│" in line]
    cells = [[cell.strip() for cell in row] for row in rows]
    ctr = next(row for row in cells if row[1] == "treatment" and row[2] == "ctr")
    difference = report["comparisons"][0]["ctr"]
    assert ctr[3].startswith(f"{difference['value']:.4f}") and ctr[5] == "yes"
    assert refused.exit_code == 1 and "422" in refused.output
    assert unknown.exit_code == 1 and "unknown experiment zz" in unknown.output
