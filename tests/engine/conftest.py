"""Fixtures of the engine tests: one generated shop's orders file and its lines, the same
for every module that evaluates on realistic data."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mgrecs.engine.orders_file import read_orders
from mgrecs.engine.records import Interaction
from mgrecs.ingest.sample_data import generate

ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)
"""The generated shop's last day."""


@pytest.fixture(scope="module")
def orders_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 customers, 120 products, 4,000 orders (seed 7) as an orders CSV file."""
    path = tmp_path_factory.mktemp("orders") / "orders.csv"
    generate(seed=7, customers=400, products=120, orders=4000, anchor=ANCHOR).write_csv(path)
    return path


@pytest.fixture(scope="module")
def generated(orders_file: Path) -> list[Interaction]:
    """The lines of `orders_file`, as the evaluation reads them."""
    return read_orders(orders_file).interactions
