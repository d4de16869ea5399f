"""Drift: recent purchases against the active model's training data, and its metrics over
time; flagged reports are stored and, when configured, ask for a retrain."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from mgrecs.batch.drift import check_drift, latest_drift, measure_drift
from mgrecs.cli.main import app as cli_app
from mgrecs.common import topics
from mgrecs.common.db import create_pool
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings, get_settings
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import RECIPE, ModelVersion, promote, register
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from support.helpers import read_topic

NOW = datetime.now(UTC)


async def _orders(
    pool: asyncpg.Pool, prefix: str, days_ago: float, customers: list[str], products: list[str]
) -> None:
    """One single-line order per (customer, product) pair, `days_ago` days back."""
    await insert_customers(pool, [StoredCustomer(c, "north") for c in customers])
    await insert_products(pool, [StoredProduct(p, p) for p in products])
    pairs = [(c, p) for c in customers for p in products]
    at = NOW - timedelta(days=days_ago)
    await insert_orders(
        pool,
        [
            StoredOrder(f"{prefix}{n}", c, at, [StoredLine(0, p)], "north")
            for n, (c, p) in enumerate(pairs)
        ],
    )


async def _version(
    pool: asyncpg.Pool, version: str, days_ago: float, ndcg: float | None, active: bool
) -> None:
    validation = None if ndcg is None else {"chosen": {"ndcg@10": ndcg}}
    trained_at = NOW - timedelta(days=days_ago)
    model = ModelVersion(version, RECIPE, "x", 1, 1, 1, {"validation": validation}, trained_at)
    await register(pool, model, promote=active, reason="")


CUSTOMERS = [f"c{n}" for n in range(20)]
PRODUCTS = [f"p{n}" for n in range(10)]


@pytest.fixture
def drift_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"drift_min_lines": 50})


async def test_recent_purchases_like_the_training_data_are_no_drift(
    pool: asyncpg.Pool, drift_settings: Settings
) -> None:
    await _orders(pool, "old", 20, CUSTOMERS, PRODUCTS)
    await _version(pool, "v1", 10, 0.3, active=True)
    await _orders(pool, "new", 2, CUSTOMERS[:10], PRODUCTS)

    report = await measure_drift(pool, drift_settings)

    assert report.judged and report.recent_lines == 100
    assert report.unseen_customer_share == 0 and report.unseen_product_share == 0
    assert report.popularity_shift == 0
    assert report.flags == [] and not report.drifted


async def test_new_customers_and_products_are_flagged_and_ask_for_a_retrain(
    pool: asyncpg.Pool, drift_settings: Settings
) -> None:
    await _orders(pool, "old", 20, CUSTOMERS, PRODUCTS)
    await _version(pool, "v1", 10, 0.3, active=True)
    await _orders(pool, "mix", 3, CUSTOMERS[:4], PRODUCTS)  # 40 familiar lines
    await _orders(pool, "new", 2, [f"n{n}" for n in range(10)], [f"q{n}" for n in range(6)])

    settings = drift_settings.model_copy(update={"drift_retrain": True})
    report_id, report = await check_drift(pool, settings)

    assert report.recent_lines == 100
    assert report.unseen_customer_share == pytest.approx(0.6)
    assert report.unseen_product_share == pytest.approx(0.6)
    assert report.popularity_shift == pytest.approx(0.6)  # the old top products: 100 % -> 40 %
    assert [flag.split(":")[0] for flag in report.flags] == [
        "unseen customers",
        "unseen products",
        "popularity shift",
    ]
    [stored] = await latest_drift(pool)
    assert stored["id"] == report_id and stored["drifted"] and stored["model_version"] == "v1"
    assert REGISTRY.get_sample_value("mgrecs_drift_flagged") == 1.0
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, settings)
    )
    ticks = [ScheduleTick.model_validate_json(record.value) for record in records]
    assert [(t.kind, t.tick_id) for t in ticks] == [("retrain", f"retrain-drift-{report_id}")]


async def test_too_few_recent_lines_give_no_verdict(
    pool: asyncpg.Pool, drift_settings: Settings
) -> None:
    await _orders(pool, "old", 20, CUSTOMERS, PRODUCTS)
    await _version(pool, "v1", 10, None, active=True)
    await _orders(pool, "new", 2, ["n1"], ["q1", "q2"])

    report = await measure_drift(pool, drift_settings)

    assert not report.judged and report.recent_lines == 2
    assert report.unseen_customer_share is None and not report.drifted


async def test_a_validation_ndcg_well_below_the_previous_versions_is_flagged(
    pool: asyncpg.Pool, drift_settings: Settings
) -> None:
    await _orders(pool, "old", 20, CUSTOMERS, PRODUCTS)
    for name, days, ndcg in (("v1", 15, 0.30), ("v2", 12, 0.34), ("v3", 11, 0.31)):
        await _version(pool, name, days, ndcg, active=False)
    await _version(pool, "v4", 10, 0.20, active=True)

    report = await measure_drift(pool, drift_settings)

    assert report.previous_ndcg_median == pytest.approx(0.31)
    assert len(report.flags) == 1 and report.flags[0].startswith("validation NDCG@10 0.2000")
    await promote(pool, "v3", "rolled back")
    assert (await measure_drift(pool, drift_settings)).flags == []


def test_the_cli_checks_drift_now(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGRECS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MGRECS_DRIFT_MIN_LINES", "50")
    get_settings.cache_clear()
    runner = CliRunner()
    none = runner.invoke(cli_app, ["drift"])
    assert none.exit_code == 1 and "no active model" in none.output

    async def seed() -> None:
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            await _orders(pool, "old", 20, CUSTOMERS, PRODUCTS)
            await _version(pool, "v1", 10, 0.3, active=True)
            await _orders(pool, "new", 2, [f"n{n}" for n in range(10)], PRODUCTS)
        finally:
            await pool.close()

    asyncio.run(seed())
    result = runner.invoke(cli_app, ["drift", "--json"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith('{"id"')]
    report = json.loads(line)
    assert report["drifted"] and report["unseen_customer_share"] == 1.0
    table = runner.invoke(cli_app, ["drift"], env={"COLUMNS": "200"})
    assert "DRIFTED" in table.output and "unseen customers: 100%" in table.output
    get_settings.cache_clear()
