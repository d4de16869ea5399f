"""`mgrecs evaluate --objective margin --catalogue FILE`: the trade-off of margin against
relevance, as a table and as JSON, and its refusals with a message."""

import asyncio
import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.common.db import create_pool
from mgrecs.common.settings import get_settings
from mgrecs.engine.evaluation.margin_curve import MarginFileError, read_margins
from mgrecs.engine.margin import WEIGHTS
from mgrecs.ingest.sample_data import generate
from mgrecs.store.products import StoredProduct, insert_products

runner = CliRunner()
FAST = ["--recipes", "itemknn", "--budget-seconds", "1", "--test-days", "21"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Generated orders and their catalogue (price and cost of every product)."""
    folder = tmp_path_factory.mktemp("margin")
    data = generate(
        seed=7, customers=300, products=100, orders=3000, anchor=datetime(2024, 6, 1, tzinfo=UTC)
    )
    orders, catalogue = folder / "orders.csv", folder / "catalogue.csv"
    data.write_csv(orders)
    with catalogue.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "name", "price", "cost"])
        for product in data.catalogue:
            writer.writerow([product.product_id, product.name, product.price, product.cost])
    return orders, catalogue


def test_json_gives_ndcg_and_mean_margin_for_every_weight(shop: tuple[Path, Path]) -> None:
    orders, catalogue = shop
    args = ["evaluate", str(orders), *FAST, "--objective", "margin", "--catalogue", str(catalogue)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    curve = json.loads(result.stdout)["margin"]
    points = curve["points"]
    assert [p["weight"] for p in points] == list(WEIGHTS)
    assert curve["candidates"] == 20 and curve["k"] == 10 and curve["products_with_margin"] > 0
    assert all(0.0 <= p["ndcg"] <= 1.0 for p in points)
    # Weighing margin in serves more of it, and relevance pays for it.
    assert points[-1]["mean_margin"] > points[0]["mean_margin"]
    assert points[-1]["ndcg"] <= points[0]["ndcg"]
    served = json.loads(result.stdout)["served"]
    measured = next(r for r in json.loads(result.stdout)["results"] if r["recipe"] == served)
    assert points[0]["ndcg"] == pytest.approx(measured["metrics"]["ndcg@10"], abs=1e-4)


def test_the_table_shows_the_curve(shop: tuple[Path, Path]) -> None:
    orders, catalogue = shop
    args = ["evaluate", str(orders), *FAST, "--objective", "margin", "--catalogue", str(catalogue)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Margin against relevance" in result.stdout
    assert "mean margin top-10" in result.stdout
    table = result.stdout[result.stdout.index("Margin against relevance") :]
    cells = [line.split("│") for line in table.splitlines() if line.startswith("│")]
    weights = [row[1].strip() for row in cells if len(row) > 2]
    assert weights[-11:] == [f"{w:g}" for w in WEIGHTS]


def test_without_a_catalogue_the_margins_come_from_the_database(
    shop: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No database reachable: refused with a message naming both ways."""
    orders, _ = shop
    monkeypatch.setenv("MGRECS_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["evaluate", str(orders), *FAST, "--objective", "margin"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "--catalogue" in result.stderr and "MGRECS_DATABASE_URL" in result.stderr


def test_the_database_catalogue_gives_the_curve(
    shop: tuple[Path, Path], database_url_for_test: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, catalogue = shop
    rows = list(csv.DictReader(catalogue.open()))

    async def store() -> None:
        pool = await create_pool(database_url_for_test, max_size=1)
        try:
            await insert_products(
                pool,
                [StoredProduct(r["product_id"], r["name"], None, float(r["price"])) for r in rows],
            )
            await pool.executemany(
                "UPDATE products SET cost = $2 WHERE product_id = $1",
                [(r["product_id"], float(r["cost"])) for r in rows],
            )
        finally:
            await pool.close()

    asyncio.run(store())
    monkeypatch.setenv("MGRECS_DATABASE_URL", database_url_for_test)
    get_settings.cache_clear()
    try:
        args = ["evaluate", str(orders), *FAST, "--objective", "margin", "--json"]
        from_db = runner.invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert from_db.exit_code == 0, from_db.output
    from_file = runner.invoke(app, [*args, "--catalogue", str(catalogue)])
    db_curve, file_curve = (json.loads(r.stdout)["margin"] for r in (from_db, from_file))
    assert db_curve["products_with_margin"] == file_curve["products_with_margin"]
    # price - cost in numeric or in float: the same lists up to rounding.
    for db_point, file_point in zip(db_curve["points"], file_curve["points"], strict=True):
        assert db_point == pytest.approx(file_point, abs=1e-3)


def test_a_catalogue_without_costs_is_refused(shop: tuple[Path, Path], tmp_path: Path) -> None:
    orders, _ = shop
    bad = tmp_path / "bad.csv"
    bad.write_text("product_id,price\nP0001,3.5\n")
    args = ["evaluate", str(orders), "--objective", "margin", "--catalogue", str(bad)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "price and cost" in result.stderr


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.lists(st.tuples(cells, cells, cells, cells), max_size=6))
def test_reading_margins_never_fails_otherwise(
    tmp_path: Path, rows: list[tuple[str, str, str, str]]
) -> None:
    """Whatever the cells: margins read, or a `MarginFileError` naming the line."""
    path = tmp_path / "catalogue.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "price", "cost", "margin"])
        writer.writerows(rows)
    try:
        margins = read_margins(path)
    except MarginFileError as error:
        assert str(error).startswith("line ")
    else:
        assert all(isinstance(v, float) for v in margins.values())
