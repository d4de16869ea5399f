"""`mgrecs evaluate ORDERS.csv`, run through typer as an operator would, on generated orders
and on broken files."""

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.engine.evaluation import BASELINES, REPEAT_BASELINE
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.engine.recipes import RECIPES
from mgrecs.ingest.sample_data import generate

runner = CliRunner()
METRICS = {"precision@10", "recall@10", "ndcg@10", "mrr", "coverage", "users"}


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("orders") / "orders.csv"
    data = generate(
        seed=7, customers=400, products=120, orders=4000, anchor=datetime(2024, 6, 1, tzinfo=UTC)
    )
    data.write_csv(path)
    return path


def test_table_shows_every_recipe_and_the_winner(orders: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(orders), "--test-days", "21"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(RECIPES) - {REPEAT_BASELINE} <= rows | {name + " *" for name in rows}
    assert {"P@10", "R@10", "NDCG@10", "MRR", "coverage"} <= set(result.stdout.split())
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict.startswith("best: ") and "% vs popularity (" in verdict
    assert "% vs popularity-count (" in verdict
    served = result.stdout.strip().splitlines()[-2]
    assert served.startswith("a retrain would serve ") and served.split()[4] in RECIPES


def test_json_has_every_recipe_and_metric_and_repeats(orders: Path) -> None:
    args = ["evaluate", str(orders), "--test-from", "2024-05-11", "--json", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout is JSON only; progress went to stderr
    assert [r["recipe"] for r in document["results"]][:3] == [
        "popularity-count",
        "popularity",
        "trending",
    ]
    assert {r["recipe"] for r in document["results"]} == set(RECIPES) - {REPEAT_BASELINE}
    for report in document["results"]:
        assert set(report["metrics"]) == METRICS
        assert 0.0 <= report["metrics"]["ndcg@10"] <= 1.0
        assert report["metrics"]["users"] == document["data"]["test_users"] > 25
    assert document["data"]["test_from"] == "2024-05-11T00:00:00+00:00"
    assert document["best"] in RECIPES and document["best"] not in BASELINES
    count = next(r for r in document["results"] if r["recipe"] == "popularity-count")
    best = next(r for r in document["results"] if r["recipe"] == document["best"])
    expected = (best["metrics"]["ndcg@10"] / count["metrics"]["ndcg@10"] - 1) * 100
    assert document["best_vs_popularity_count_percent"] == pytest.approx(expected, abs=0.01)
    assert document["input"]["lines_skipped"] == 0
    als = next(r for r in document["results"] if r["recipe"] == "als")
    assert als["params"]["random_state"] == 3

    # Same seed, same data: same figures (timings aside).
    again = runner.invoke(app, [*args, "--recipes", "als"])
    repeated = json.loads(again.stdout)
    assert [r for r in repeated["results"] if r["recipe"] == "als"][0]["metrics"] == als["metrics"]
    assert repeated["results"][0]["metrics"] == document["results"][0]["metrics"]


def test_repeat_mode_counts_repeat_purchases(orders: Path) -> None:
    args = ["evaluate", str(orders), "--test-days", "21", "--json", "--recipes", "buy-again"]
    new_only = json.loads(runner.invoke(app, args).stdout)
    repeat = json.loads(runner.invoke(app, [*args, "--repeat"]).stdout)
    assert repeat["repeat"] is True
    assert repeat["data"]["test_users"] > new_only["data"]["test_users"]

    # Buy-again ranks what a customer bought before first: with purchases excluded only
    # what completes its list is left; it finds the planted repeat purchases once they count
    # and stay in the ranking.
    def ndcg(document: dict[str, Any], recipe: str = "buy-again") -> float:
        result = next(r for r in document["results"] if r["recipe"] == recipe)
        return float(result["metrics"]["ndcg@10"])

    assert ndcg(repeat) > 1.5 * ndcg(new_only)
    assert ndcg(repeat) > 1.5 * ndcg(repeat, "popularity")


def _broken(tmp_path: Path, orders: Path) -> Path:
    rows = list(csv.reader(orders.open()))
    rows[5][COLUMNS.index("quantity")] = "-1"  # line 6
    path = tmp_path / "broken.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _unwrapped(text: str) -> str:
    """The console wraps long lines (a long temporary path moves the breaks)."""
    return " ".join(text.split())


def test_strict_fails_on_a_bad_line_with_its_number(orders: Path, tmp_path: Path) -> None:
    broken = _broken(tmp_path, orders)
    result = runner.invoke(app, ["evaluate", str(broken), "--strict", "--recipes", "ease"])
    assert result.exit_code == 2
    assert "line 6: quantity -1 is not positive" in _unwrapped(result.stderr)
    assert "Traceback" not in result.output

    lenient = runner.invoke(app, ["evaluate", str(broken), "--json", "--recipes", "ease"])
    assert lenient.exit_code == 0, lenient.output
    assert json.loads(lenient.stdout)["input"]["lines_skipped"] == 1
    assert "skipped 1 of" in lenient.stderr and "line 6" in lenient.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("order_id,customer_id,product_id\no1,c1,p1\n", "lacks column(s): product_name"),
        (
            ",".join(COLUMNS)
            + "\no1,c1,p1,Tea,,1.0,1,2024-01-01,north\no2,c1,p2,Tea,,1.0,1,2024-01-05,\n",
            "too little data: only 0 customers",
        ),
    ],
)
def test_bad_or_too_little_input_exits_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(content)
    result = runner.invoke(app, ["evaluate", str(path), "--test-days", "1"])
    assert result.exit_code == 2
    assert message in _unwrapped(result.stderr)


def test_conflicting_or_unknown_options_exit_2(orders: Path) -> None:
    both = runner.invoke(
        app, ["evaluate", str(orders), "--test-days", "7", "--test-from", "2024-05-01"]
    )
    assert both.exit_code == 2 and "not both" in both.stderr
    unknown = runner.invoke(app, ["evaluate", str(orders), "--recipes", "ease,magic"])
    assert unknown.exit_code == 2 and "unknown recipe(s) magic" in unknown.stderr
    date = runner.invoke(app, ["evaluate", str(orders), "--test-from", "soon"])
    assert date.exit_code == 2 and "not an ISO-8601 date" in date.stderr
