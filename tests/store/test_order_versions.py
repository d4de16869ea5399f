"""Orders as the company keeps them: corrections, cancellations and returns, written by the
tracker into the real PostgreSQL. The newest version of an order wins whatever the arrival
order and batching, and only the lines that count reach the training data."""

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgrecs.batch.dataset import load_lines
from mgrecs.common.schemas import OrderEvent, OrderStatus, version_token
from mgrecs.store.order_reads import INTERACTIONS, INTERACTIONS_CSV
from mgrecs.store.orders import write_orders
from mgrecs.tracker.events import put_events_calls

START = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMERS = [(f"c{n}", ("north", "south", None)[n % 3]) for n in range(8)]
"""Customer attributes are the same in every message (they are not versioned)."""
PRODUCTS = [(f"p{n}", Decimal(n * 3 + 1) / 2) for n in range(12)]
"""So are product prices: `products.price` is the last one seen, whatever the version."""
STATUSES: list[OrderStatus] = ["placed", "placed", "placed", "cancelled", "returned"]


def order(
    order_id: str,
    lines: list[tuple[str, int] | tuple[str, int, OrderStatus]],
    *,
    customer: int = 0,
    status: OrderStatus = "placed",
    updated: int | None = None,
    ordered: int = 0,
) -> OrderEvent:
    """One version of an order: `lines` as (product, quantity[, status]); times are minutes
    after START (`updated` None: no updated_at)."""
    customer_id, region = CUSTOMERS[customer]
    prices = dict(PRODUCTS)
    return OrderEvent(
        order_id=order_id,
        ordered_at=START + timedelta(minutes=ordered),
        updated_at=None if updated is None else START + timedelta(minutes=updated),
        status=status,
        customer={"customer_id": customer_id, "region": region},
        lines=[
            {
                "product_id": line[0],
                "quantity": line[1],
                "price": prices[line[0]],
                "status": line[2] if len(line) == 3 else "placed",
            }
            for line in lines
        ],
    )


async def deliver(pool: asyncpg.Pool, messages: list[OrderEvent], batch: int) -> None:
    for start in range(0, len(messages), batch):
        await write_orders(pool, messages[start : start + batch])


async def snapshot(pool: asyncpg.Pool) -> dict[str, Any]:
    """The tables and the training data, in a form two runs can be compared by."""
    lines = await load_lines(pool)
    training = sorted(
        zip(
            (lines.customer_ids[c] for c in lines.customer),
            (lines.item_ids[i] for i in lines.item),
            lines.quantity.tolist(),
            lines.time.tolist(),
            strict=True,
        )
    )
    return {
        "orders": [
            tuple(row)
            for row in await pool.fetch(
                "SELECT order_id, customer_id, ordered_at, region, status, updated_at,"
                " content_hash FROM orders ORDER BY order_id"
            )
        ],
        "order_items": [
            tuple(row)
            for row in await pool.fetch("SELECT * FROM order_items ORDER BY order_id, line_no")
        ],
        "customers": [
            tuple(row)
            for row in await pool.fetch(
                "SELECT customer_id, age, gender, city, region FROM customers ORDER BY 1"
            )
        ],
        "products": [
            tuple(row)
            for row in await pool.fetch(
                "SELECT product_id, name, category, price FROM products ORDER BY 1"
            )
        ],
        "interactions": sorted(tuple(row) for row in await pool.fetch(INTERACTIONS)),
        "export": [tuple(row) for row in await pool.fetch(INTERACTIONS_CSV, None, None)],
        "training": training,
    }


async def clear(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE order_items, orders, customers, products CASCADE")


def expected_items(messages: list[OrderEvent]) -> list[tuple[Any, ...]]:
    """What `order_items` must hold: the lines that count of each order's newest version."""
    newest: dict[str, OrderEvent] = {}
    for message in messages:
        held = newest.get(message.order_id)
        if held is None or message.version > held.version:
            newest[message.order_id] = message
    return sorted(
        (o.order_id, n, line.product_id, line.quantity, line.price)
        for o in newest.values()
        for n, line in o.live_lines()
    )


async def assert_same_whatever_the_arrival(
    pool: asyncpg.Pool, first: list[OrderEvent], second: list[OrderEvent], batches: tuple[int, int]
) -> dict[str, Any]:
    await deliver(pool, first, batches[0])
    one = await snapshot(pool)
    await clear(pool)
    await deliver(pool, second, batches[1])
    await deliver(pool, first[: len(first) // 2], batches[0])  # a resend changes nothing
    two = await snapshot(pool)
    await clear(pool)
    assert one == two
    assert one["order_items"] == expected_items(first)
    return one


# -- the property -----------------------------------------------------------------------------

line_st = st.tuples(
    st.sampled_from([p for p, _ in PRODUCTS]),
    st.integers(1, 3),
    st.sampled_from(["placed", "placed", "placed", "returned", "cancelled"]),
)
version_st = st.tuples(
    st.lists(line_st, min_size=1, max_size=4),
    st.sampled_from(STATUSES),
    st.one_of(st.none(), st.integers(0, 4)),  # few distinct times: ties happen
    st.integers(0, len(CUSTOMERS) - 1),
)


@st.composite
def histories(draw: st.DrawFn) -> list[OrderEvent]:
    """Several orders, each in 1-4 versions (corrections with other, fewer or more lines,
    cancellations, returns of the order or of single lines; some versions sent twice)."""
    messages = []
    for number in range(draw(st.integers(1, 8))):
        for lines, status, updated, customer in draw(st.lists(version_st, min_size=1, max_size=4)):
            message = order(
                f"o{number}",
                list(lines),
                customer=customer,
                status=status,
                updated=updated,
                ordered=2,
            )
            messages.extend([message] * draw(st.integers(1, 2)))
    return messages


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=histories(), data=st.data())
async def test_any_arrival_order_and_batching_gives_the_same_tables_and_training_data(
    pool: asyncpg.Pool, messages: list[OrderEvent], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(messages))
    batches = (data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)))
    await assert_same_whatever_the_arrival(pool, messages, list(shuffled), batches)


def thousand_orders(seed: int = 15) -> list[OrderEvent]:
    """The drill's data at test size: 1,000 orders, a third of them corrected, cancelled or
    returned once or twice, versions in the order upstream made them."""
    rng = random.Random(seed)
    messages = []
    for number in range(1_000):
        customer = rng.randrange(len(CUSTOMERS))
        lines = [(rng.choice(PRODUCTS)[0], rng.randint(1, 3)) for _ in range(rng.randint(1, 4))]
        messages.append(order(f"o{number}", lines, customer=customer, ordered=number))
        for revision in range(rng.choice((0, 0, 1, 2))):
            kind = rng.choice(("fewer", "more", "quantity", "cancelled", "returned", "line"))
            status: OrderStatus = kind if kind in ("cancelled", "returned") else "placed"
            if kind == "fewer" and len(lines) > 1:
                lines = lines[:-1]
            elif kind == "more":
                lines = [*lines, (rng.choice(PRODUCTS)[0], 1)]
            elif kind == "quantity":
                lines = [(lines[0][0], lines[0][1] + 1), *lines[1:]]
            revised: list[Any] = list(lines)
            if kind == "line":
                revised[0] = (*lines[0], "returned")
            updated = number + 1 + revision
            messages.append(
                order(
                    f"o{number}",
                    revised,
                    customer=customer,
                    status=status,
                    updated=updated,
                    ordered=number,
                )
            )
    return messages


async def test_the_same_1000_orders_in_two_arrival_orders_give_identical_tables(
    pool: asyncpg.Pool,
) -> None:
    """The drill's fast test: corrections and cancellations delivered in upstream order and
    shuffled (newest before oldest for many orders), in other batch sizes."""
    messages = thousand_orders()
    shuffled = list(messages)
    random.Random(1).shuffle(shuffled)
    one = await assert_same_whatever_the_arrival(pool, messages, shuffled, (100, 37))
    reversed_one = await assert_same_whatever_the_arrival(
        pool, messages, messages[::-1], (250, 1000)
    )
    assert one == reversed_one
    statuses = {row[4] for row in one["orders"]}
    assert statuses == {"placed", "cancelled", "returned"}
    assert len(one["orders"]) == 1_000


# -- hand-picked cases ------------------------------------------------------------------------


async def items(pool: asyncpg.Pool, order_id: str) -> list[tuple[int, str, int]]:
    rows = await pool.fetch(
        "SELECT line_no, product_id, quantity FROM order_items WHERE order_id = $1"
        " ORDER BY line_no",
        order_id,
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_correction_with_fewer_lines_removes_the_old_ones(pool: asyncpg.Pool) -> None:
    await write_orders(pool, [order("o1", [("p1", 1), ("p2", 1), ("p3", 1)], updated=0)])
    await write_orders(pool, [order("o1", [("p2", 2)], updated=5)])
    assert await items(pool, "o1") == [(1, "p2", 2)]


async def test_a_correction_with_more_lines_replaces_not_appends(pool: asyncpg.Pool) -> None:
    await write_orders(pool, [order("o1", [("p1", 1)], updated=0)])
    await write_orders(pool, [order("o1", [("p4", 1), ("p5", 3), ("p1", 1)], updated=5)])
    assert await items(pool, "o1") == [(1, "p4", 1), (2, "p5", 3), (3, "p1", 1)]


async def test_a_changed_quantity_replaces_the_line(pool: asyncpg.Pool) -> None:
    await write_orders(pool, [order("o1", [("p1", 1), ("p2", 1)])])  # no updated_at
    await write_orders(pool, [order("o1", [("p1", 4), ("p2", 1)], updated=1)])
    assert await items(pool, "o1") == [(1, "p1", 4), (2, "p2", 1)]


async def test_a_cancellation_holds_against_an_older_version_arriving_late(
    pool: asyncpg.Pool,
) -> None:
    placed = order("o1", [("p1", 1)], updated=1)
    cancelled = order("o1", [("p1", 1)], status="cancelled", updated=2)
    await write_orders(pool, [cancelled])
    await write_orders(pool, [placed])
    row = await pool.fetchrow("SELECT status, updated_at FROM orders WHERE order_id = 'o1'")
    assert (row["status"], row["updated_at"]) == ("cancelled", START + timedelta(minutes=2))
    assert await items(pool, "o1") == []
    assert await pool.fetchval(f"SELECT count(*) FROM ({INTERACTIONS}) i") == 0


async def test_a_returned_line_leaves_and_the_rest_of_the_order_stays(pool: asyncpg.Pool) -> None:
    await write_orders(pool, [order("o1", [("p1", 1), ("p2", 1)], updated=0)])
    await write_orders(pool, [order("o1", [("p1", 1, "returned"), ("p2", 1)], updated=3)])
    assert await items(pool, "o1") == [(2, "p2", 1)]  # line numbers are positions upstream


async def test_a_resend_of_the_same_version_changes_nothing(pool: asyncpg.Pool) -> None:
    first = order("o1", [("p1", 1)], updated=1)
    await write_orders(pool, [first])
    before = await pool.fetchrow("SELECT * FROM orders WHERE order_id = 'o1'")
    await write_orders(pool, [first, first])
    after = await pool.fetchrow("SELECT * FROM orders WHERE order_id = 'o1'")
    assert dict(before) == dict(after)
    assert after["revised_at"] is None  # never replaced
    assert await items(pool, "o1") == [(1, "p1", 1)]


async def test_versions_in_one_batch_the_newest_wins(pool: asyncpg.Pool) -> None:
    newest = order("o1", [("p3", 2)], updated=9)
    await write_orders(pool, [newest, order("o1", [("p1", 1)], updated=2)])
    await write_orders(pool, [order("o2", [("p1", 1)], updated=2), order("o2", [("p2", 1)])])
    assert await items(pool, "o1") == [(1, "p3", 2)]
    assert await items(pool, "o2") == [(1, "p1", 1)]  # no updated_at: ordered_at counts


async def test_a_tie_on_updated_at_is_broken_by_content_the_same_either_way(
    pool: asyncpg.Pool,
) -> None:
    one, other = order("o1", [("p1", 1)], updated=3), order("o1", [("p2", 1)], updated=3)
    winner = max(one, other, key=lambda o: o.version)
    await write_orders(pool, [one])
    await write_orders(pool, [other])
    forwards = await items(pool, "o1")
    await clear(pool)
    await write_orders(pool, [other])
    await write_orders(pool, [one])
    assert await items(pool, "o1") == forwards == [(1, winner.lines[0].product_id, 1)]


async def test_an_order_stored_before_versions_is_replaced_by_any_message(
    pool: asyncpg.Pool,
) -> None:
    """Rows from before migration 0011 (or written by hand) have no updated_at: they are the
    version of their ordered_at with an empty hash, older than any message about them."""
    await write_orders(pool, [order("o1", [("p1", 1)])])
    await pool.execute("UPDATE orders SET updated_at = NULL, content_hash = ''")
    await write_orders(pool, [order("o1", [("p1", 1)], status="returned")])
    assert await pool.fetchval("SELECT status FROM orders") == "returned"
    assert await items(pool, "o1") == []


def test_put_events_name_the_order_version_and_aws_gets_no_cancels() -> None:
    """A version without lines that count is one `cancel` event for the engine; AWS cannot
    take a sent event back, so it gets none."""
    partly = order("o1", [("p1", 1, "returned"), ("p2", 2)], updated=3)
    cancelled = order("o2", [("p1", 1)], status="cancelled", updated=4)
    engine_calls = put_events_calls([partly, cancelled], "tracking")
    events = [event for call in engine_calls for event in call["eventList"]]
    assert [(e["eventId"], e["eventType"], e.get("itemId")) for e in events] == [
        ("o1#2", "purchase", "p2"),
        ("o2#cancel", "cancel", None),
    ]
    assert json.loads(events[0]["properties"])["orderVersion"] == partly.version.token
    assert json.loads(events[1]["properties"])["orderId"] == "o2"
    aws_calls = put_events_calls([partly, cancelled], "tracking", cancels=False)
    assert [e["eventId"] for call in aws_calls for e in call["eventList"]] == ["o1#2"]
    assert put_events_calls([cancelled], "tracking", cancels=False) == []


def test_a_version_token_sorts_like_the_version() -> None:
    times = [None, 0, 1, 1, 59, 60 * 24 * 30]  # a month on: still in the past
    versions = [order("o1", [(p, 1)], updated=t).version for t in times for p in ("p1", "p2")]
    assert sorted(versions) == sorted(versions, key=lambda v: v.token)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
        ),
    ),
    st.text(alphabet="0123456789abcdef", max_size=32),
)
def test_a_version_token_is_the_utc_time_to_the_microsecond(
    updated_at: datetime, content_hash: str
) -> None:
    """Whatever the zone and microseconds: the fixed-width UTC time, then the hash."""
    utc = updated_at.astimezone(UTC).replace(tzinfo=None)
    expected = f"{utc.isoformat(timespec='microseconds')}/{content_hash}"
    assert version_token(updated_at, content_hash) == expected
