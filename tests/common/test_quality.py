"""Data-quality checks with planted errors: each check finds exactly what was planted, the
verdict follows the configured rate, and reports reach PostgreSQL, the CLI, the API, and stop
a retrain fed bad data."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from mgrecs.api.app import create_app
from mgrecs.batch.training import DataQualityFailed, retrain
from mgrecs.cli.main import app as cli_app
from mgrecs.common import quality_checks
from mgrecs.common.db import create_pool
from mgrecs.common.quality import QualityReport
from mgrecs.common.quality_checks import QualityAccumulator, check_events
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.ingest.backfill import backfill_file
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.reports import latest_reports, save_report
from support.helpers import asgi_client

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CATALOGUE = [f"p{i}" for i in range(10)] + ["never1", "never2"]


def _normal_batch() -> QualityAccumulator:
    """200 clean lines: customers c0..c39 with 5 orders each (c40 and c41 order once), each
    order 1 line; p0..p9 bought 1-3 at their own price."""
    acc = QualityAccumulator()
    for n in range(200):
        product = n % 10
        acc.add(f"o{n}", f"c{n % 40}", f"p{product}", 1 + n % 3, 10.0 * (product + 1) + n % 4)
    acc.add("o-single-1", "c40", "p1", 1, 21.0)
    acc.add("o-single-2", "c41", "p2", 2, 31.0)
    return acc


def test_a_clean_batch_passes_and_names_the_coverage_gaps() -> None:
    report = _normal_batch().report("test", "sync", 0.05, CATALOGUE)
    assert report.passed
    assert report.bad_lines == 0
    assert all(check.count == 0 for check in report.checks.values())
    assert report.coverage.products_without_purchases == 2
    assert report.coverage.products_without_purchases_examples == ["never1", "never2"]
    assert report.coverage.customers_with_one_order == 2
    assert report.coverage.customers_with_one_order_examples == ["c40", "c41"]


def test_each_check_finds_exactly_the_planted_records() -> None:
    acc = _normal_batch()
    acc.add("bad-cust", "", "p3", 1, 40.0)
    acc.add("bad-prod", "c1", None, 1, 40.0)
    acc.add("o5", "c5", "p5", 1, 60.0)  # o5 already had p5: the event sent twice
    acc.add("huge-qty", "c2", "p4", 1000, 50.0)  # 500x the usual 1-3
    acc.add("huge-price", "c3", "p6", 1, 7000.0)  # 100x the usual 70
    acc.add("few", "c4", "rare", 1, 1.0)
    acc.add("few2", "c4", "rare", 1, 100000.0)  # too few observations to judge
    report = acc.report("test", "sync", 0.05, CATALOGUE)
    checks = report.checks
    assert checks["missing_customer_id"].count == 1
    assert checks["missing_customer_id"].examples == [{"order_id": "bad-cust", "product_id": "p3"}]
    assert checks["missing_product_id"].count == 1
    assert checks["missing_product_id"].examples == [{"order_id": "bad-prod", "customer_id": "c1"}]
    assert checks["duplicate"].count == 1
    assert checks["duplicate"].examples == [{"order_id": "o5", "product_id": "p5"}]
    assert checks["outlier_quantity"].count == 1
    assert checks["outlier_quantity"].examples[0] == {
        "order_id": "huge-qty",
        "product_id": "p4",
        "value": 1000.0,
    }
    assert checks["outlier_price"].count == 1
    assert checks["outlier_price"].examples[0]["order_id"] == "huge-price"
    assert report.bad_lines == 5
    assert report.lines == 209
    assert report.passed  # 5 / 209 = 2.4% <= 5%
    assert "duplicate 1" in report.reason


def test_small_windows_judge_like_one_big_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines are judged a window at a time (flat memory): duplicates, repeat customers and the
    usual ranges carry across windows, so the verdict does not depend on the window size."""

    def planted() -> QualityAccumulator:
        acc = _normal_batch()
        acc.add("o5", "c5", "p5", 1, 60.0)  # o5 came 200 lines earlier
        acc.add("twice", "c6", "p7", 1, 80.0)
        acc.add("twice", "c6", "p7", 1, 80.0)  # the same product twice on one order
        acc.add("huge-qty", "c2", "p4", 1000, 50.0)
        return acc

    whole = planted().report("t", "sync", 0.05, CATALOGUE)
    monkeypatch.setattr(quality_checks, "WINDOW_LINES", 7)
    windowed = planted().report("t", "sync", 0.05, CATALOGUE)
    assert windowed.checks == whole.checks
    assert windowed.coverage == whole.coverage
    assert (windowed.bad_lines, windowed.lines) == (whole.bad_lines, whole.lines) == (3, 206)
    assert whole.checks["duplicate"].examples == [
        {"order_id": "o5", "product_id": "p5"},
        {"order_id": "twice", "product_id": "p7"},
    ]


def test_the_first_line_of_a_new_window_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line that starts a window belongs to it: its order's second copy of the same
    product is found (it once went to the window just judged and was never looked at)."""
    monkeypatch.setattr(quality_checks, "WINDOW_LINES", 2)
    acc = QualityAccumulator()
    acc.add("o1", "c1", "p1", 1, 10.0)
    acc.add("o2", "c2", "p2", 1, 10.0)
    acc.add("o3", "c3", "p3", 1, 10.0)  # the window is full: judged, o3 starts the next
    acc.add("o3", "c3", "p3", 1, 10.0)
    report = acc.report("t", "sync", 0.5)
    assert report.checks["duplicate"].examples == [{"order_id": "o3", "product_id": "p3"}]
    assert report.bad_lines == 1


@pytest.mark.parametrize("piece", [1, 3, 5, 500])
def test_lines_added_in_columns_are_judged_like_lines_one_by_one(
    piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`add_lines` (a retrain's columnar check) gives `add`'s report, whatever the pieces and
    windows: orders cut across pieces, a window ending mid-piece, a missing id in a piece."""
    monkeypatch.setattr(quality_checks, "WINDOW_LINES", 7)
    lines = [
        (f"o{n // 3}", f"c{n % 40}", f"p{n % 10}", 1 + n % 3, 10.0 * (n % 10 + 1) + n % 4)
        for n in range(300)
    ]
    lines += [
        ("o5", "c5", "p5", 1, 60.0),  # o5 came long before
        ("twice", "c6", "p7", 1, 80.0),
        ("twice", "c6", "p7", 1, 80.0),
        ("huge-qty", "c2", "p4", 1000, 50.0),
        ("no-customer", "", "p3", 1, 40.0),
        ("huge-price", "c3", "p6", 1, 7000.0),
    ]
    one_by_one = QualityAccumulator()
    for order_id, customer_id, product_id, quantity, price in lines:
        one_by_one.add(order_id, customer_id, product_id, quantity, price)
    in_columns = QualityAccumulator()
    for start in range(0, len(lines), piece):
        order_ids, customer_ids, product_ids, quantities, prices = zip(
            *lines[start : start + piece], strict=True
        )
        in_columns.add_lines(order_ids, customer_ids, product_ids, quantities, prices)
    expected = one_by_one.report("t", "export", 0.05, CATALOGUE)
    got = in_columns.report("t", "export", 0.05, CATALOGUE)
    assert got.model_dump(exclude={"created_at"}) == expected.model_dump(exclude={"created_at"})
    assert (got.lines, got.checks["duplicate"].count) == (306, 2)
    assert got.checks["missing_customer_id"].count == 1
    assert got.checks["outlier_quantity"].count >= 1


def test_memory_stays_flat_over_a_long_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is held between windows grows with distinct orders and customers (8 bytes each)
    and the catalogue, never with the lines of an order or the batch's length."""
    monkeypatch.setattr(quality_checks, "WINDOW_LINES", 1000)
    acc = QualityAccumulator()
    for n in range(20_000):
        acc.add(f"o{n // 4}", f"c{n // 4 % 500}", f"p{n % 50}", 1 + n % 3, 10.0 + n % 7)
        assert len(acc._window) <= 1000 + 4
    report = acc.report("t", "sync", 0.05)
    assert acc._orders_seen.keys.size == 5000 and acc._customers_seen.keys.size == 500
    assert acc._quantity_range.sample.shape[1] == quality_checks.RESERVOIR
    assert report.bad_lines == 0 and report.coverage.customers_with_one_order == 0


def test_the_verdict_flips_at_the_configured_rate() -> None:
    acc = _normal_batch()
    for n in range(10):
        acc.add(f"x{n}", None, f"p{n}", 1, 10.0)
    rate = 10 / 212
    assert acc.report("t", "sync", rate).passed
    failed = acc.report("t", "sync", rate - 0.001)
    assert not failed.passed
    assert "above the limit" in failed.reason and "missing_customer_id 10" in failed.reason


def test_events_are_checked_line_by_line() -> None:
    event = OrderEvent.model_validate(
        {
            "order_id": "e1",
            "ordered_at": NOW.isoformat(),
            "customer": {"customer_id": "c1"},
            "lines": [{"product_id": "p1", "quantity": 1, "price": "2.00"}],
        }
    )
    report = check_events([event, event], "sync", "sync", 0.05)
    assert report.lines == 2
    assert report.checks["duplicate"].count == 1
    assert not report.passed
    assert json.loads(report.model_dump_json())["checks"]["duplicate"]["count"] == 1


async def test_a_report_round_trips_through_postgres(pool: asyncpg.Pool) -> None:
    first = _normal_batch().report("backfill:a.csv", "backfill", 0.05, CATALOGUE)
    second = _normal_batch().report("retrain", "export", 0.05)
    first_id = await save_report(pool, first)
    second_id = await save_report(pool, second)
    assert second_id > first_id
    stored = await latest_reports(pool, limit=10)
    assert [report_id for report_id, _ in stored] == [second_id, first_id]
    assert stored[1][1] == first
    only = await latest_reports(pool, limit=10, source="retrain")
    assert [report for _, report in only] == [second]


async def test_the_api_lists_the_latest_reports(pool: asyncpg.Pool, settings: Settings) -> None:
    await save_report(pool, _normal_batch().report("retrain", "export", 0.05))
    await save_report(pool, _normal_batch().report("backfill:b.csv", "backfill", 0.05))
    settings.api_admin_keys = "admin-key"
    async with asgi_client(create_app(settings)) as http:
        anonymous = await http.get("/v1/quality/reports", params={"limit": 1})
        assert anonymous.status_code == 401  # a report is the operators': the admin key
        http.headers["X-API-Key"] = "admin-key"
        answer = await http.get("/v1/quality/reports", params={"limit": 1})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [item["source"] for item in body["items"]] == ["backfill:b.csv"]
        assert body["items"][0]["report"]["lines"] == 202
        assert (await http.get("/v1/quality/reports", params={"limit": 0})).status_code == 422


def _store(settings: Settings, report: QualityReport) -> None:
    async def run() -> None:
        db_pool = await create_pool(settings.database_url, max_size=1)
        try:
            await save_report(db_pool, report)
        finally:
            await db_pool.close()

    asyncio.run(run())


def test_the_cli_prints_the_latest_reports(cli_env: Settings) -> None:
    acc = _normal_batch()
    for n in range(20):
        acc.add(f"x{n}", "", "p1", 1, 20.0)
    _store(cli_env, acc.report("backfill:c.csv", "backfill", 0.05))
    runner = CliRunner()
    result = runner.invoke(cli_app, ["quality", "--json"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.output)
    assert item["report"]["checks"]["missing_customer_id"]["count"] == 20
    assert item["report"]["passed"] is False
    table = runner.invoke(
        cli_app, ["quality", "--source", "backfill:c.csv"], env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    assert "backfill:c.csv" in table.output and "FAILED" in table.output
    none = runner.invoke(cli_app, ["quality", "--source", "nothing"])
    assert "no data-quality report" in none.output


async def _insert_shop(pool: asyncpg.Pool, outliers: int) -> None:
    """40 customers x 5 orders of p0..p9 at their usual price; `outliers` lines at 100x."""
    await insert_products(pool, [StoredProduct(p, p) for p in CATALOGUE])
    await insert_customers(pool, [StoredCustomer(f"c{n}", "north") for n in range(40)])
    start = datetime.now(UTC) - timedelta(days=30)
    await insert_orders(
        pool,
        [
            StoredOrder(
                f"o{n}",
                f"c{n % 40}",
                start + timedelta(hours=n),
                [
                    StoredLine(
                        0, f"p{n % 10}", 1, 10.0 * (n % 10 + 1) * (100 if n < outliers else 1)
                    )
                ],
                "north",
            )
            for n in range(200)
        ],
    )


def _artifacts(settings: Settings) -> list[Path]:
    """Model files (the exported datasets, written before the check, are not a model)."""
    return list(Path(settings.artifact_dir).glob("*.npz"))


async def test_a_retrain_on_bad_data_stops_and_records_why(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await _insert_shop(pool, outliers=15)  # 15 of 200 lines = 7.5% > 5%
    with pytest.raises(DataQualityFailed, match="above the limit"):
        await retrain(pool, settings)
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 0
    assert not await asyncio.to_thread(_artifacts, settings)
    [(_, report)] = await latest_reports(pool, source="retrain")
    assert not report.passed
    assert report.checks["outlier_price"].count == 15
    assert report.coverage.products_without_purchases == 2


async def test_a_retrain_on_clean_enough_data_trains_and_keeps_the_report(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await _insert_shop(pool, outliers=5)  # 2.5%
    version = await retrain(pool, settings)
    assert version.n_interactions == 200
    [(_, report)] = await latest_reports(pool, source="retrain")
    assert report.passed and report.checks["outlier_price"].count == 5


async def test_a_backfill_stores_the_report_of_every_row(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    lines = [",".join(COLUMNS)]
    for n in range(100):
        product = n % 5
        lines.append(
            f"o{n},c{n % 20},p{product},Name,cat,{product + 1}.50,1,2026-11-20T10:00:00Z,n"
        )
    lines.append("o-bad,c1,p1,Name,cat,1.00,-3,2026-11-20T10:00:00Z,n")  # invalid: rejected
    lines.append("o-dup,c1,p2,Name,cat,3.50,1,2026-11-20T10:00:00Z,n")
    lines.append("o-dup,c1,p2,Name,cat,3.50,1,2026-11-20T10:00:00Z,n")  # the row sent twice
    lines.append("o-big,c2,p3,Name,cat,4.50,500,2026-11-20T10:00:00Z,n")  # 500x
    path = tmp_path / "orders.csv"
    await asyncio.to_thread(path.write_text, "\n".join(lines) + "\n")
    summary = await backfill_file(path, settings)
    assert summary.lines_rejected == 1
    [(report_id, report)] = await latest_reports(pool)
    assert report_id == summary.quality_report_id
    assert report.source == "backfill:orders.csv" and report.lines == 104
    counts = {name: check.count for name, check in report.checks.items() if check.count}
    assert counts == {"invalid": 1, "duplicate": 1, "outlier_quantity": 1}
    assert report.checks["invalid"].examples[0]["order_id"] == "o-bad"
    assert report.bad_lines == 3 and report.passed
