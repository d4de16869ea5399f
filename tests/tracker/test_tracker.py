"""The tracker: the PostgreSQL sink and the PutEvents sink, on the real broker and database."""

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from prometheus_client import REGISTRY

from mgrecs.common import topics
from mgrecs.common.records import MAX_DEAD_LETTER_PAYLOAD
from mgrecs.common.schemas import OrderEvent, OrderLine
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.events_sink import EventsSink
from support.fake_put_events import FakePutEvents
from support.helpers import eventually, running, serve
from support.orders_topic import as_messages, caught_up, dead_letters, publish

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)
TABLES = ("customers", "products", "orders", "order_items")


def sample_orders(count: int = 60) -> list[OrderEvent]:
    return generate(seed=3, customers=25, products=30, orders=count, anchor=ANCHOR).orders


HUGE_LINES = 11_000
"""About 960 KB of JSON: under the broker's 1 MB limit, over it once quoted in a letter."""


def poison(orders: list[OrderEvent]) -> list[tuple[bytes | None, bytes, str]]:
    """(key, value, expected reason fragment) of messages no sink can use."""
    negative = json.loads(orders[0].model_dump_json())
    negative["order_id"] = "negative-quantity"
    negative["lines"][0]["quantity"] = -2
    huge = json.loads(orders[0].model_dump_json())
    huge["order_id"] = "huge"
    huge["lines"] = [
        {"product_id": f"PRODUCT-{i:06d}", "quantity": 1, "price": "1.00", "category": "huge"}
        for i in range(HUGE_LINES)
    ]
    return [
        (b"k1", b"{this is not json", "not JSON"),
        (b"k2", json.dumps({"hello": "world"}).encode(), "order_id: Field required"),
        (b"k3", json.dumps(negative).encode(), "lines.0.quantity"),
        (b"k4", json.dumps(huge).encode(), "lines: List should have at most 500 items"),
    ]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {table: await pool.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}


def metric(name: str, sink: str) -> float:
    return REGISTRY.get_sample_value(name, {"sink": sink}) or 0.0


async def test_db_sink_writes_orders_and_dead_letters_poison(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    orders = sample_orders()
    bad = poison(orders)
    # an order valid by the schema that the database refuses (a constraint the schema
    # does not know, as after a stricter migration): only that order is dead-lettered
    await pool.execute(
        "ALTER TABLE order_items ADD CONSTRAINT no_recalled CHECK (product_id <> 'P-RECALLED')"
    )
    refused = orders[1].model_copy(
        update={
            "order_id": "refused-by-db",
            "lines": [OrderLine(product_id="P-RECALLED", quantity=1, price=Decimal("1.00"))],
        }
    )
    # a product no message described before is not poison: the order brings the product
    unknown = orders[2].model_copy(
        update={
            "order_id": "unknown-product",
            "lines": [OrderLine(product_id="P-NEVER-SEEN", quantity=3, price=Decimal("4.20"))],
        }
    )
    orders.append(unknown)
    good = as_messages(orders)
    messages = [m for pair in zip(good, [(k, v) for k, v, _ in bad], strict=False) for m in pair]
    messages += good[len(bad) :]
    await publish(settings, [*messages, *as_messages([refused])])

    async with running(DbSink(settings)):
        await eventually(lambda: caught_up(settings, DbSink.group))
        first = await counts(pool)
        letters = await dead_letters(settings)

        assert first == {
            "customers": len({o.customer.customer_id for o in orders}),
            "products": len({line.product_id for o in orders for line in o.lines}),
            "orders": len(orders),
            "order_items": sum(len(o.lines) for o in orders),
        }
        assert len(letters) == len(bad) + 1
        reasons = {letter.key: letter.reason for letter in letters}
        for key, _, fragment in bad:
            assert fragment in reasons[key.decode()]
        assert "rejected by the database" in reasons[refused.customer.customer_id]
        payloads = {letter.key: letter.payload for letter in letters}
        for key, value, _ in bad:
            assert value.decode().startswith(payloads[key.decode()])
        assert "payload cut to" in reasons["k4"]
        assert len(payloads["k4"]) == MAX_DEAD_LETTER_PAYLOAD
        unknown_line = await pool.fetchval(
            "SELECT quantity FROM order_items WHERE order_id = 'unknown-product'"
        )
        assert unknown_line == 3
        unknown_product = await pool.fetchrow(
            "SELECT name, category FROM products WHERE product_id = 'P-NEVER-SEEN'"
        )
        assert tuple(unknown_product) == (None, None)
        assert {letter.source_topic for letter in letters} == {
            topics.topic(topics.ORDERS, settings)
        }

        order = orders[7]
        row = await pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", order.order_id)
        assert (row["customer_id"], row["ordered_at"], row["region"]) == (
            order.customer.customer_id,
            order.ordered_at,
            order.customer.region,
        )
        items = await pool.fetch(
            "SELECT line_no, product_id, quantity, price FROM order_items WHERE order_id = $1 "
            "ORDER BY line_no",
            order.order_id,
        )
        assert [tuple(item) for item in items] == [
            (n, line.product_id, line.quantity, line.price)
            for n, line in enumerate(order.lines, start=1)
        ]
        customer = await pool.fetchrow(
            "SELECT age, gender, city, region FROM customers WHERE customer_id = $1",
            order.customer.customer_id,
        )
        assert tuple(customer) == (
            order.customer.age,
            order.customer.gender,
            order.customer.city,
            order.customer.region,
        )
        line = order.lines[0]
        product = await pool.fetchrow(
            "SELECT name, category, price FROM products WHERE product_id = $1", line.product_id
        )
        assert tuple(product) == (line.product_name, line.category, line.price)

        # Replay: the same orders again change nothing, not even the update times.
        stamps = await pool.fetch("SELECT updated_at FROM customers ORDER BY customer_id")
        await publish(settings, as_messages(orders))
        await eventually(lambda: caught_up(settings, DbSink.group))
        assert await counts(pool) == first
        assert await pool.fetch("SELECT updated_at FROM customers ORDER BY customer_id") == stamps
        assert len(await dead_letters(settings)) == len(bad) + 1


async def test_db_sink_fills_in_missing_customer_and_product_details(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    base = sample_orders(1)[0]
    bare = base.model_copy(
        update={
            "order_id": "bare",
            "customer": base.customer.model_copy(update={"age": None, "city": None}),
            "lines": [base.lines[0].model_copy(update={"product_name": None, "category": None})],
        }
    )
    await publish(settings, as_messages([base, bare]))
    async with running(DbSink(settings)):
        await eventually(lambda: caught_up(settings, DbSink.group))
    customer = await pool.fetchrow("SELECT age, city FROM customers")
    product = await pool.fetchrow(
        "SELECT name, category FROM products WHERE product_id = $1", base.lines[0].product_id
    )
    assert tuple(customer) == (base.customer.age, base.customer.city)
    assert tuple(product) == (base.lines[0].product_name, base.lines[0].category)


async def test_db_sink_retries_while_the_database_fails_and_loses_nothing(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    orders = sample_orders(20)
    await pool.execute("ALTER TABLE order_items RENAME TO order_items_away")
    await publish(settings, as_messages(orders))
    retries = metric("mgrecs_tracker_retries_total", "db")

    async with running(DbSink(settings)):
        await eventually(lambda: _above(metric("mgrecs_tracker_retries_total", "db"), retries))
        assert not await caught_up(settings, DbSink.group)
        assert await pool.fetchval("SELECT count(*) FROM orders") == 0
        await pool.execute("ALTER TABLE order_items_away RENAME TO order_items")
        await eventually(lambda: caught_up(settings, DbSink.group))

    assert await pool.fetchval("SELECT count(*) FROM order_items") == sum(
        len(o.lines) for o in orders
    )
    assert await dead_letters(settings) == []


async def _above(value: float, floor: float) -> bool:
    return value > floor


@pytest.fixture
async def fake_events(settings: Settings) -> AsyncIterator[FakePutEvents]:
    fake = FakePutEvents(failures=4)
    async with serve(fake.app, settings.engine_port):
        yield fake


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "put-events-only"])
async def test_events_sink_forwards_every_line_once(
    settings: Settings, fake_events: FakePutEvents, bulk: bool
) -> None:
    """With the bulk path (the self-hosted engine) or without it (AWS): every line once, in
    PutEvents calls of at most 10 events, whichever way they travel."""
    settings.events_bulk = bulk
    orders = sample_orders(80)
    big = orders[0].model_copy(
        update={
            "order_id": "big",
            "lines": [
                OrderLine(product_id=f"P{i:04d}", quantity=i % 3 + 1, price=Decimal("2.50"))
                for i in range(1, 24)
            ],
        }
    )
    orders.append(big)
    bad = poison(orders)
    skipped = metric("mgrecs_tracker_skipped_total", "events")
    await publish(settings, [*as_messages(orders), *[(k, v) for k, v, _ in bad]])

    async with running(EventsSink(settings)):
        await eventually(lambda: caught_up(settings, EventsSink.group))

    calls = fake_events.calls
    events = [(call, event) for call in calls for event in call["eventList"]]
    ids = Counter(event["eventId"] for _, event in events)
    expected = {
        f"{o.order_id}#{n}": (o, line) for o in orders for n, line in enumerate(o.lines, start=1)
    }
    assert set(ids) == set(expected)
    assert max(ids.values()) == 1
    assert all(1 <= len(call["eventList"]) <= 10 for call in calls)
    assert (fake_events.bulk_requests > 0) == bulk
    for call, event in events:
        order, line = expected[event["eventId"]]
        assert call["trackingId"] == settings.tracking_id
        assert call["userId"] == call["sessionId"] == order.customer.customer_id
        assert event["eventType"] == "purchase"
        assert event["itemId"] == line.product_id
        assert event["sentAt"] == order.ordered_at.timestamp()
        properties = json.loads(event["properties"])
        assert properties["quantity"] == line.quantity
        assert properties.get("region") == order.customer.region
    assert metric("mgrecs_tracker_skipped_total", "events") - skipped == len(bad)
    assert fake_events.failures == 0
