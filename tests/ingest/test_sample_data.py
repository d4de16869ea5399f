"""The sample data set: deterministic, valid, and with the structure recommenders feed on."""

import csv
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from pathlib import Path

import pytest

from mgrecs.common.schemas import OrderEvent
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.ingest.sample_data import HISTORY_DAYS, REGION_TASTES, generate

ANCHOR = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data():
    return generate(seed=11, anchor=ANCHOR)


def test_same_seed_same_data_and_another_seed_other_data() -> None:
    def dump(seed: int) -> list[str]:
        sample = generate(seed=seed, customers=80, products=40, orders=300, anchor=ANCHOR)
        return [order.model_dump_json() for order in sample.orders]

    assert dump(3) == dump(3)
    assert dump(3) != dump(4)


def test_orders_are_valid_events_with_customer_and_product_details(data) -> None:
    assert len(data.orders) == 4000
    assert len({order.order_id for order in data.orders}) == 4000
    catalogue = {product.product_id: product for product in data.products}
    for order in data.orders:
        assert OrderEvent.model_validate_json(order.model_dump_json()) == order
        customer = order.customer
        assert customer.customer_id.startswith("C") and len(customer.customer_id) == 6
        assert customer.age is not None and customer.gender in ("F", "M", "X")
        assert customer.city and customer.region in REGION_TASTES
        assert ANCHOR - timedelta(days=HISTORY_DAYS) <= order.ordered_at <= ANCHOR
        assert 1 <= len(order.lines) <= 5
        assert len({line.product_id for line in order.lines}) == len(order.lines)
        for line in order.lines:
            product = catalogue[line.product_id]
            assert (line.product_name, line.category, line.price) == (
                product.name,
                product.category,
                product.price,
            )
            assert line.price == line.price.quantize(Decimal("0.01"))
    quantities = Counter(line.quantity for order in data.orders for line in order.lines)
    assert sum(quantities[q] for q in (1, 2, 3)) / sum(quantities.values()) > 0.9


def test_orders_cover_recent_and_older_activity(data) -> None:
    recent = ANCHOR - timedelta(days=90)
    assert any(order.ordered_at < recent for order in data.orders)
    assert sum(order.ordered_at >= recent for order in data.orders) > len(data.orders) / 2


def test_each_category_has_its_own_price_range(data) -> None:
    by_category: dict[str, list[float]] = {}
    for product in data.products:
        by_category.setdefault(product.category, []).append(float(product.price))
    assert len(by_category) == 8
    medians = sorted(sorted(prices)[len(prices) // 2] for prices in by_category.values())
    assert medians[-1] > 5 * medians[0]


def test_popularity_has_a_head_and_a_long_tail(data) -> None:
    counts = Counter(line.product_id for order in data.orders for line in order.lines)
    total = sum(counts.values())
    head = sum(n for _, n in counts.most_common(len(data.products) // 10))
    assert head / total > 0.3  # the top 10% of products sell at least 3x their fair share
    assert len(counts) > 0.8 * len(data.products)  # and most of the tail still sells


def test_regions_favour_their_categories(data) -> None:
    for region, favourites in REGION_TASTES.items():
        inside = [
            line.category in favourites
            for order in data.orders
            if order.customer.region == region
            for line in order.lines
        ]
        outside = [
            line.category in favourites
            for order in data.orders
            if order.customer.region != region
            for line in order.lines
        ]
        assert sum(inside) / len(inside) > 1.5 * sum(outside) / len(outside), region


def test_bundle_members_are_bought_together_far_more_than_chance(data) -> None:
    baskets = [{line.product_id for line in order.lines} for order in data.orders]
    bought = Counter(product for basket in baskets for product in basket)
    observed = expected = 0.0
    for bundle in data.bundles:
        for a, b in combinations(bundle, 2):
            observed += sum(1 for basket in baskets if a in basket and b in basket)
            expected += bought[a] * bought[b] / len(baskets)
    assert observed > 5 * expected


def test_customers_buy_again(data) -> None:
    seen: set[tuple[str, str]] = set()
    repeats = lines = 0
    for order in data.orders:
        keys = {(order.customer.customer_id, line.product_id) for line in order.lines}
        repeats += len(keys & seen)
        lines += len(keys)
        seen |= keys
    assert repeats / lines > 0.15


def test_csv_has_the_flat_format_and_every_line(data, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    written = data.write_csv(path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == COLUMNS
    lines = [(o, line) for o in data.orders for line in o.lines]
    assert written == len(rows) - 1 == len(lines)
    first_order, first_line = lines[0]
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["order_id"] == first_order.order_id
    assert record["product_id"] == first_line.product_id
    assert record["price"] == f"{first_line.price:.2f}"
    assert datetime.fromisoformat(record["ordered_at"]) == first_order.ordered_at
    assert record["region"] == first_order.customer.region


def test_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        generate(anchor=datetime(2026, 11, 26))


def test_both_readers_read_every_line_the_generator_writes(data, tmp_path: Path) -> None:
    """One format (`mgrecs.engine.order_lines`): the generator writes it, backfill reads it
    into orders and evaluation into interactions, and neither skips a line."""
    from mgrecs.engine.orders_file import read_orders as read_interactions
    from mgrecs.ingest.order_files import read_orders as read_file_orders

    path = tmp_path / "orders.csv"
    written = data.write_csv(path)
    with path.open(newline="") as handle:
        orders = [order.to_order() for order in read_file_orders(handle, "csv")]
    assert sum(len(order.lines) for order in orders) == written
    assert [o.order_id for o in orders] == [o.order_id for o in data.orders]
    interactions = read_interactions(path, strict=True)
    assert interactions.summary.lines_read == written
    assert interactions.summary.lines_skipped == 0


def test_the_catalogue_describes_every_product_and_some_nobody_bought() -> None:
    sample = generate(seed=4, customers=60, products=50, orders=300, anchor=ANCHOR)
    without = generate(seed=4, customers=60, products=50, orders=300, anchor=ANCHOR, new_products=0)
    # the catalogue has its own random stream: the orders do not depend on it
    assert [o.model_dump_json() for o in sample.orders] == [
        o.model_dump_json() for o in without.orders
    ]
    ids = [p.product_id for p in sample.catalogue]
    assert ids[:50] == [p.product_id for p in sample.products] and len(ids) == 55
    sold = {line.product_id for order in sample.orders for line in order.lines}
    new = sample.catalogue[50:]
    assert {p.product_id for p in new} <= {p.product_id for p in sample.unsold}
    assert not {p.product_id for p in new} & sold
    first_order = min(order.ordered_at for order in sample.orders)
    for product in sample.catalogue:
        assert Decimal(0) < product.cost < product.price
        assert dict(product.attributes).keys() == {"brand", "size"}
        if product in new:
            assert ANCHOR - timedelta(days=14) <= product.launched_at <= ANCHOR
        else:
            assert product.launched_at < first_order
