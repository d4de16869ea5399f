"""`customer_products`, what each customer bought, is a summary the buy-again list reads in
place of the order tables: after any orders, corrections (other lines, another customer,
another date), cancellations and returns, in any arrival order and batching, by either
writer, and with writers racing on one customer, it equals the aggregate of `orders` and
`order_items`; the migration fills it the same way from rows already there."""

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders, write_orders
from mgrecs.store.schema import alembic_config, migrate_async
from store.test_order_versions import CUSTOMERS, PRODUCTS, START, deliver, histories, order

AGGREGATE = """
SELECT o.customer_id, oi.product_id, count(DISTINCT o.order_id)::int, max(o.ordered_at)
FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
GROUP BY 1, 2 ORDER BY 1, 2
"""
"""What `customer_products` must hold: the order tables, aggregated as buy-again did."""

SUMMARY = "SELECT customer_id, product_id, orders, last_ordered_at FROM customer_products"


async def assert_summary_exact(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    summary = sorted(tuple(row) for row in await pool.fetch(SUMMARY))
    assert summary == [tuple(row) for row in await pool.fetch(AGGREGATE)]
    return summary


async def clear(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE order_items, orders, customers, products, customer_products")


CORRECTIONS = ["drawn", "drawn", "customer kept", "more lines", "quantities"]
"""How a version relates to its order's first: as `histories` drew it; its lines with the
first's customer; the first's lines and customer, and its lines too; the first's lines and
customer, other quantities (the writer's fast paths: a pair kept with the same customer and
date changes nothing, one added costs an addition)."""


def corrected(message: OrderEvent, first: OrderEvent, kind: str, minutes: int) -> OrderEvent:
    """`message` as a correction of `first` of `kind` (`CORRECTIONS`), placed `minutes` later."""
    update: dict[str, object] = {"ordered_at": message.ordered_at + timedelta(minutes=minutes)}
    if kind != "drawn":
        update["customer"] = first.customer
    if kind == "more lines":
        update["lines"] = [*first.lines, *message.lines]
    elif kind == "quantities":
        update["lines"] = [
            line.model_copy(update={"quantity": line.quantity + 1}) for line in first.lines
        ]
    return message.model_copy(update=update)


fixture_orders_st = st.lists(
    st.tuples(
        st.integers(0, len(CUSTOMERS) - 1),
        st.integers(0, 60),
        st.lists(st.sampled_from([p for p, _ in PRODUCTS]), min_size=1, max_size=3),
    ),
    max_size=4,
)
"""Orders the plain writer inserts (customer, minutes after START, products)."""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=histories(), fixtures=fixture_orders_st, data=st.data())
async def test_any_orders_and_corrections_leave_the_summary_equal_to_the_order_tables(
    pool: asyncpg.Pool,
    messages: list[OrderEvent],
    fixtures: list[tuple[int, int, list[str]]],
    data: st.DataObject,
) -> None:
    """`histories` draws each order in versions with other lines, statuses and customers;
    here some versions keep the first's customer, lines or both, and some move the order's
    date. Checked after every batch."""
    await clear(pool)
    first = {}
    for message in reversed(messages):
        first[message.order_id] = message
    moved = [
        corrected(
            m,
            first[m.order_id],
            data.draw(st.sampled_from(CORRECTIONS), label="correction"),
            data.draw(st.sampled_from([0, 0, -30, 45]), label="date moved"),
        )
        for m in messages
    ]
    shuffled = data.draw(st.permutations(moved))
    batch = data.draw(st.integers(1, 5), label="batch")
    for start in range(0, len(shuffled), batch):
        await write_orders(pool, shuffled[start : start + batch])
        await assert_summary_exact(pool)
    await insert_customers(pool, [StoredCustomer(c, r) for c, r in CUSTOMERS])
    await insert_orders(
        pool,
        [
            StoredOrder(
                f"fixture{n}",
                CUSTOMERS[customer][0],
                START + timedelta(minutes=minutes),
                [StoredLine(line_no, product) for line_no, product in enumerate(products, 1)],
            )
            for n, (customer, minutes, products) in enumerate(fixtures)
        ],
    )
    await assert_summary_exact(pool)


async def test_a_correction_moves_the_purchase_to_the_new_customer_and_date(
    pool: asyncpg.Pool,
) -> None:
    await write_orders(pool, [order("o1", [("p1", 1)], customer=0, updated=0, ordered=0)])
    await write_orders(pool, [order("o2", [("p1", 1)], customer=0, updated=0, ordered=10)])
    await write_orders(pool, [order("o2", [("p1", 1)], customer=1, updated=5, ordered=20)])
    assert await assert_summary_exact(pool) == [
        ("c0", "p1", 1, START),
        ("c1", "p1", 1, START + timedelta(minutes=20)),
    ]
    await write_orders(pool, [order("o1", [("p1", 1)], status="cancelled", updated=9)])
    assert await assert_summary_exact(pool) == [("c1", "p1", 1, START + timedelta(minutes=20))]


async def test_an_older_version_or_a_resend_changes_nothing(pool: asyncpg.Pool) -> None:
    newest = order("o1", [("p1", 1), ("p1", 2), ("p2", 1)], updated=5, ordered=3)
    await write_orders(pool, [newest])
    before = await assert_summary_exact(pool)
    await write_orders(pool, [newest, order("o1", [("p3", 1)], updated=1)])
    assert await assert_summary_exact(pool) == before
    assert [row[:3] for row in before] == [("c0", "p1", 1), ("c0", "p2", 1)]  # one order


async def test_a_new_order_and_a_correction_of_the_same_pair_in_one_batch_count_once(
    pool: asyncpg.Pool,
) -> None:
    """The correction's pairs are recomputed from the tables, the new order's lines already
    in them: its count is not added on top."""
    await write_orders(pool, [order("o1", [("p1", 1)], updated=0)])
    await write_orders(
        pool, [order("o1", [("p1", 2), ("p2", 1)], updated=5), order("o2", [("p1", 1)], ordered=9)]
    )
    summary = await assert_summary_exact(pool)
    assert [row[:3] for row in summary] == [("c0", "p1", 2), ("c0", "p2", 1)]


async def test_writers_racing_on_one_customer_leave_the_summary_exact(
    pool: asyncpg.Pool,
) -> None:
    """One customer's orders and corrections written by many transactions at once (tracker
    replicas during a rebalance): each recomputes the pairs it touched after the others
    that touched them committed, so none leaves a count that misses another's lines."""
    for round_ in range(8):
        new = [
            order(f"o{round_}-{n}", [("p1", 1), ("p2", 1)], updated=0, ordered=n) for n in range(12)
        ]
        corrections = [
            order(f"o{round_ - 1}-{n}", [("p1", 1)] if n % 2 else [("p2", 1)], updated=9)
            for n in range(12 if round_ else 0)
        ]
        await asyncio.gather(*(write_orders(pool, [m]) for m in new + corrections))
        await assert_summary_exact(pool)
    summary = await assert_summary_exact(pool)
    assert [row[:3] for row in summary] == [("c0", "p1", 12 + 7 * 6), ("c0", "p2", 12 + 7 * 6)]


LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND position($1 IN query) > 0
"""


async def wait_until_blocked(pool: asyncpg.Pool, statement: str) -> None:
    """Until a session waits on a lock in a statement containing `statement`."""
    for _ in range(500):
        if await pool.fetchval(LOCK_WAITERS, statement):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no session blocked in {statement!r}")


@pytest.mark.parametrize("stored_before", [True, False], ids=["stored", "new"])
async def test_two_versions_moving_one_order_at_once_leave_the_summary_exact(
    pool: asyncpg.Pool, stored_before: bool
) -> None:
    """Two tracker replicas (a rebalance) write two versions of one order at once, each
    giving it another customer: the later one waits on the earlier's row, and must take the
    customer that the earlier left on it out of the summary, not the one stored (or none)
    when the later statement started."""
    known = [order("o0", [("p1", 1)], customer=3)]  # p1 stored: the writers race on o1 alone
    if stored_before:
        known.append(order("o1", [("p1", 1)], customer=0, updated=0))
    await write_orders(pool, known)
    async with pool.acquire() as gate, gate.transaction():
        # The first writer stops after its upsert, on its customers' summary locks.
        await gate.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('mgrecs:customer-products:' || $1, 0))",
            "c1",
        )
        first = asyncio.create_task(
            write_orders(pool, [order("o1", [("p1", 1)], customer=1, updated=1)])
        )
        await wait_until_blocked(pool, "pg_advisory_xact_lock")
        later = asyncio.create_task(
            write_orders(pool, [order("o1", [("p1", 1)], customer=2, updated=2)])
        )
        await wait_until_blocked(pool, "INSERT INTO orders")
    await asyncio.gather(first, later)
    summary = [row[:3] for row in await assert_summary_exact(pool)]
    assert summary == [("c2", "p1", 1), ("c3", "p1", 1)]


async def test_the_migration_fills_it_from_the_orders_already_there(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await deliver(pool, [order(f"o{n}", [(f"p{n % 3}", 1)], customer=n % 2) for n in range(9)], 4)
    expected = await assert_summary_exact(pool)
    config = alembic_config(settings.database_url)
    await asyncio.to_thread(command.downgrade, config, "0018")
    await migrate_async(settings.database_url)
    assert await assert_summary_exact(pool) == expected != []
