"""`mgrecs evaluate`'s cold-start report: products first sold in the test period, the served
lists' hit rate and NDCG@10 on them without and with the "new in your categories" slot."""

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.engine.dataset import Lines
from mgrecs.engine.evaluation.cold_start import cold_start_report
from mgrecs.engine.evaluation.split import time_split
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.engine.orders_file import read_orders

runner = CliRunner()
START = datetime(2024, 3, 1, tzinfo=UTC)
CATEGORIES = ("tea", "snacks", "dairy")
TEST_FROM = START + timedelta(days=60)


def write_shop(path: Path, new: bool = True) -> None:
    """90 customers each loyal to a category (three quarters of their purchases) over 60
    days; in the last 14 days they buy on, and the customers of each category buy its one
    new product N-<category>, never sold before."""
    rng = random.Random(5)
    rows = []
    old = {c: [f"P-{c}-{n}" for n in range(10)] for c in CATEGORIES}
    order = 0

    def line(customer: str, product: str, category: str, when: datetime) -> None:
        nonlocal order
        order += 1
        rows.append(
            [
                f"o{order}",
                customer,
                product,
                f"name {product}",
                category,
                "2.50",
                "1",
                when.isoformat(),
                "north",
            ]
        )

    for n in range(90):
        customer, home = f"c{n}", CATEGORIES[n % 3]
        for _ in range(6):
            category = home if rng.random() < 0.75 else rng.choice(CATEGORIES)
            when = START + timedelta(days=rng.uniform(0, 59))
            line(customer, rng.choice(old[category]), category, when)
        line(customer, rng.choice(old[home]), home, TEST_FROM + timedelta(days=rng.uniform(0, 5)))
        if new and n % 2 == 0:
            when = TEST_FROM + timedelta(days=rng.uniform(1, 13))
            line(customer, f"N-{home}", home, when)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cold") / "orders.csv"
    write_shop(path)
    return path


ARGS = [
    "--test-from",
    TEST_FROM.date().isoformat(),
    "--recipes",
    "itemknn",
    "--budget-seconds",
    "5",
]


def test_json_reports_the_new_products_without_and_with_the_slot(shop: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(shop), *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    cold = json.loads(result.stdout)["cold_start"]
    assert cold["new_products"] == 3 and cold["customers"] == 45
    assert cold["new_items_share"] == 0.1 and cold["k"] == 10
    assert cold["without_slot"] == {"hit_rate": 0.0, "ndcg@10": 0.0}
    assert cold["with_slot"]["hit_rate"] == 1.0  # each gets its category's new product
    assert 0 < cold["with_slot"]["ndcg@10"] <= 1


def test_table_shows_the_report_and_share_zero_turns_the_slot_off(shop: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(shop), *ARGS, "--new-items-share", "0"])
    assert result.exit_code == 0, result.output
    assert "Cold start: 3 products first sold in the test period" in result.stdout
    assert "without the new-items slot" in result.stdout
    slot_row = next(line for line in result.stdout.splitlines() if "with the slot" in line)
    assert slot_row.split("│")[2].strip() == "0.0000"
    bad = runner.invoke(app, ["evaluate", str(shop), *ARGS, "--new-items-share", "1.5"])
    assert bad.exit_code == 2


def test_a_larger_share_never_lowers_the_hit_rate(shop: Path) -> None:
    """Direct: a larger share never lowers the hit rate; the figures are in [0, 1]."""
    data = read_orders(shop)
    split = time_split(data.interactions, test_from=TEST_FROM)
    top = -np.ones((split.users.size, 10), dtype=np.int64)
    rates = []
    for share in (0.0, 0.1, 0.3):
        cold = cold_start_report(
            Lines.of(data.interactions), split, "none", top, data.products, 10, share
        )
        assert 0 <= cold.with_slot.ndcg <= 1
        rates.append(cold.with_slot.hit_rate)
    assert rates == sorted(rates) and rates[0] == 0.0 and rates[-1] == 1.0


def test_no_new_product_gives_an_empty_report(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    write_shop(path, new=False)
    result = runner.invoke(app, ["evaluate", str(path), *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    cold = json.loads(result.stdout)["cold_start"]
    assert (cold["new_products"], cold["customers"]) == (0, 0)
    assert cold["with_slot"] == cold["without_slot"] == {"hit_rate": 0.0, "ndcg@10": 0.0}
