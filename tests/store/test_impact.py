"""Attribution on the real database: which order lines count as influenced and to which
answer, and a planted effect the uplift recovers (docs/concepts.md, Impact)."""

import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, strategies
from hypothesis import settings as hypothesis_settings

from mgrecs.common.served import ServedList
from mgrecs.store.impact_report import NOT_SERVED, impact_report
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.store.served import write_served

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
START, END = T0 - timedelta(days=1), T0 + timedelta(days=1)


def served(
    served_id: str,
    customer: str,
    at: datetime,
    products: list[str],
    version: str = "v1",
    source: str = "cache",
    **fields: object,
) -> ServedList:
    return ServedList.model_validate(
        {
            "served_id": served_id,
            "served_at": at,
            "endpoint": "user",
            "customer_id": customer,
            "product_ids": products,
            "source": source,
            "model_version": version,
            **fields,
        }
    )


def order(order_id: str, customer: str, at: datetime, *products: str) -> StoredOrder:
    return StoredOrder(
        order_id,
        customer,
        at,
        [StoredLine(n, p, quantity=2, price=5.0) for n, p in enumerate(products)],
        region="north",
    )


async def test_a_line_is_attributed_to_the_latest_answer_in_the_window(pool: asyncpg.Pool) -> None:
    await insert_products(
        pool,
        [
            StoredProduct(p, category="dairy" if p < "P3" else "bakery")
            for p in ["P1", "P2", "P3", "P4"]
        ],
    )
    await write_served(
        pool,
        [
            served("old", "C1", T0 - timedelta(days=3), ["P1", "P2"], version="v1"),
            served("new", "C1", T0 - timedelta(days=1), ["P1"], version="v2", source="realtime"),
            served("late", "C1", T0 + timedelta(minutes=5), ["P3"], version="v2"),
            served("stale", "C1", T0 - timedelta(days=8), ["P4"], version="v0"),
            served("other", "C2", T0 - timedelta(hours=1), ["P3"], version="v1"),
        ],
    )
    await insert_orders(
        pool,
        [
            # P1: served by v1 and v2 within the window, v2 latest; P2: v1 only; P3: served
            # after the order (and to another customer); P4: served 8 days before
            order("o1", "C1", T0, "P1", "P2", "P3", "P4"),
            order("o2", "C1", T0, "P1"),
        ],
    )
    await pool.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = 'o2'")

    report = await impact_report(pool, START, END, 7.0, ["model_version"])

    groups = {g.key["model_version"]: g for g in report.groups}
    assert set(groups) == {"v1", "v2", NOT_SERVED}
    assert (groups["v2"].attributed.revenue, groups["v2"].attributed.items) == (10.0, 2)
    assert groups["v1"].attributed.revenue == 10.0
    assert groups[NOT_SERVED].baseline.revenue == 20.0
    assert groups[NOT_SERVED].attributed.revenue == 0.0
    assert report.total.attributed.revenue == 20.0
    assert report.total.attributed.orders == 1
    assert report.total.baseline.revenue == 20.0

    by_source = await impact_report(pool, START, END, 7.0, ["source", "category"])
    keys = {(g.key["source"], g.key["category"]): g for g in by_source.groups}
    assert keys[("realtime", "dairy")].attributed.revenue == 10.0
    assert keys[("cache", "dairy")].attributed.revenue == 10.0
    assert keys[(NOT_SERVED, "bakery")].baseline.revenue == 20.0

    wider = await impact_report(pool, START, END, 9.0, ["region"])
    assert wider.groups[0].key == {"region": "north"}
    assert wider.groups[0].attributed.revenue == 30.0  # P4 falls in a 9-day window


async def test_a_holdout_arm_is_the_baseline_of_the_others(pool: asyncpg.Pool) -> None:
    await insert_products(pool, [StoredProduct("P1"), StoredProduct("P2")])
    tag = {"experiment_id": "e"}
    await write_served(
        pool,
        [
            served("a", "C1", T0 - timedelta(hours=2), ["P1"], arm="treatment", **tag),
            served("b", "C2", T0 - timedelta(hours=2), ["P1"], arm="treatment", **tag),
            served(
                "c", "C3", T0 - timedelta(hours=2), ["P2"], arm="holdout", source="popular", **tag
            ),
            served("d", "C4", T0 - timedelta(hours=2), [], arm="holdout", **tag),
        ],
    )
    await insert_orders(pool, [order("o1", "C1", T0, "P1", "P2"), order("o2", "C3", T0, "P1")])

    report = await impact_report(pool, START, END, 7.0, ["arm"])

    arms = {a.arm: a for a in report.arms}
    assert arms["treatment"].customers == 2 and arms["holdout"].customers == 2
    assert arms["treatment"].revenue_per_customer is not None
    assert arms["treatment"].revenue_per_customer.value == pytest.approx(10.0)
    assert arms["holdout"].revenue_per_customer is not None
    assert arms["holdout"].revenue_per_customer.value == pytest.approx(5.0)
    assert arms["treatment"].versus_holdout is not None
    assert arms["treatment"].versus_holdout.value == pytest.approx(5.0)
    assert arms["holdout"].versus_holdout is None
    groups = {g.key["arm"]: g for g in report.groups}
    assert groups["treatment"].attributed.revenue == 10.0


async def plant(pool: asyncpg.Pool, extra: float, seed: int) -> None:
    """400 customers each shown 10 of 50 products, buying each product with probability
    0.03, plus `extra` when shown."""
    rng = random.Random(seed)
    products = [f"P{n:02d}" for n in range(50)]
    await insert_products(pool, [StoredProduct(p) for p in products])
    answers, orders = [], []
    for c in range(400):
        customer = f"C{c:03d}"
        shown = set(rng.sample(products, 10))
        answers.append(served(f"s{c}", customer, T0 - timedelta(days=2), sorted(shown)))
        bought = [p for p in products if rng.random() < 0.03 + (extra if p in shown else 0.0)]
        if bought:
            orders.append(order(f"o{c}", customer, T0, *bought))
    await write_served(pool, answers)
    await insert_orders(pool, orders)


@pytest.mark.parametrize("extra", [0.1, 0.0])
async def test_the_uplift_recovers_a_planted_effect(pool: asyncpg.Pool, extra: float) -> None:
    await plant(pool, extra, seed=20)

    report = await impact_report(pool, START, END, 7.0, ["day"])

    assert report.uplift is not None
    difference = report.uplift.difference
    assert difference.n == 400
    assert difference.low <= extra <= difference.high
    if extra:
        assert difference.low > 0
    assert report.uplift.other_rate == pytest.approx(0.03, abs=0.01)


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    answers=strategies.lists(
        strategies.tuples(
            strategies.sampled_from(["C1", "C2"]),
            strategies.integers(min_value=-12, max_value=2),  # days from T0
            strategies.lists(strategies.sampled_from(["P1", "P2", "P3"]), max_size=3),
            strategies.sampled_from(["v1", "v2"]),
        ),
        max_size=6,
    ),
    lines=strategies.lists(
        strategies.tuples(
            strategies.sampled_from(["C1", "C2"]),
            strategies.integers(min_value=-2, max_value=2),  # hours from T0
            strategies.sampled_from(["P1", "P2", "P3"]),
            strategies.booleans(),  # placed
        ),
        min_size=1,
        max_size=6,
    ),
    window=strategies.sampled_from([1.0, 7.0]),
)
async def test_attribution_matches_its_definition(
    pool: asyncpg.Pool,
    answers: list[tuple[str, int, list[str], str]],
    lines: list[tuple[str, int, str, bool]],
    window: float,
) -> None:
    """Any answers and orders: each placed line goes to the latest answer that served its
    product to its customer within the window before it, or to the baseline."""
    await pool.execute(
        "DELETE FROM served; DELETE FROM order_items; DELETE FROM orders; DELETE FROM products"
    )
    await insert_products(pool, [StoredProduct(p) for p in ("P1", "P2", "P3")])
    planted = [
        served(f"s{n}", c, T0 + timedelta(days=d, minutes=n), products, version=v)
        for n, (c, d, products, v) in enumerate(answers)
    ]
    await write_served(pool, planted)
    orders = [order(f"o{n}", c, T0 + timedelta(hours=h), p) for n, (c, h, p, _) in enumerate(lines)]
    await insert_orders(pool, orders)
    cancelled = [f"o{n}" for n, line in enumerate(lines) if not line[3]]
    await pool.execute(
        "UPDATE orders SET status = 'cancelled' WHERE order_id = ANY($1::text[])", cancelled
    )

    report = await impact_report(pool, START, END, window, ["model_version"])

    expected: dict[str, float] = {}
    for c, h, product, placed in lines:
        if not placed:
            continue
        at = T0 + timedelta(hours=h)
        candidates = [
            a
            for a in planted
            if a.customer_id == c
            and product in a.product_ids
            and at - timedelta(days=window) <= a.served_at <= at
        ]
        latest = max(candidates, key=lambda a: (a.served_at, a.served_id), default=None)
        key = NOT_SERVED if latest is None else str(latest.model_version)
        expected[key] = expected.get(key, 0.0) + 10.0
    found = {
        str(g.key["model_version"]): g.attributed.revenue + g.baseline.revenue
        for g in report.groups
    }
    assert found == expected
    assert report.total.baseline.revenue == expected.get(NOT_SERVED, 0.0)
