"""Fault tests of the tracker as a real process: `kill -9` in the middle of the stream,
PostgreSQL stopped and started again, the engine down (longer than a call's retries last), a
tracker killed during a rebalance.

The tracker (`mgrecs-tracker`) and the engine (`mgrecs-engine`) run as their own processes
against the test's broker and PostgreSQL, the way a deployment runs them. The sizes are the
smallest that still put each fault mid-stream; `make drill` runs them at full size.
"""

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from mgrecs.cli.embedded import EmbeddedPostgres
from mgrecs.cli.processes import ServiceProcess, wait_healthy
from mgrecs.common import topics
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.store.databases import create_database
from mgrecs.store.schema import migrate_async
from support.faults import (
    assert_exactly_in_postgres,
    line_count,
    orders_of,
    publish_fast,
    split_lines,
    start_engine,
)
from support.helpers import engine_stats, eventually, read_topic

LINES = 30_000
"""Order lines sent (issue 18 sent 100,000: `make drill`); the orders are cut so the total is
exact."""


@pytest.fixture
async def engine(settings: Settings, service: Callable[..., ServiceProcess]) -> AsyncIterator[str]:
    _, url = await start_engine(settings, service)
    yield url


async def tracker_metric(process: ServiceProcess, name: str, sink: str) -> float:
    """A sample of the tracker process's /metrics (0 while it does not answer yet)."""
    url = f"http://127.0.0.1:{process.env['MGRECS_TRACKER_METRICS_PORT']}/metrics"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(url)).text
    except httpx.HTTPError:
        return 0.0
    prefix = f'{name}{{sink="{sink}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


async def test_kill_9_mid_stream_then_restart_lands_every_line_exactly_once(
    settings: Settings,
    pool: asyncpg.Pool,
    service: Callable[..., ServiceProcess],
    engine: str,
) -> None:
    orders = orders_of(LINES)
    assert line_count(orders) == LINES
    tracker = service("tracker", "mgrecs-tracker", "--sink", "all")
    await publish_fast(settings, orders)

    async def some_rows() -> int:
        rows: int = await pool.fetchval("SELECT count(*) FROM order_items")
        return rows if rows >= LINES // 20 else 0

    await eventually(some_rows, timeout=120, interval=0.05)
    assert tracker.process is not None
    tracker.process.kill()  # SIGKILL: no shutdown, a batch may be half written
    tracker.process.wait()
    rows_at_kill = await pool.fetchval("SELECT count(*) FROM order_items")
    events_at_kill = (await engine_stats(engine))["events_received"]
    assert 0 < rows_at_kill < LINES
    assert events_at_kill < LINES

    restarted = service("tracker", "mgrecs-tracker", "--sink", "all")

    async def all_landed() -> bool:
        assert restarted.alive(), restarted.log_tail()
        rows = await pool.fetchval("SELECT count(*) FROM order_items")
        stats = await engine_stats(engine)
        return bool(rows >= LINES and stats["events_received"] >= LINES)

    await eventually(all_landed, timeout=240, interval=0.5)
    await asyncio.sleep(2)  # anything still in flight would show now

    await assert_exactly_in_postgres(pool, orders)
    stats = await engine_stats(engine)
    # the engine counts an event id once: LINES accepted means each line's event exactly once
    assert stats["events_received"] == LINES
    assert stats["users_with_events"] == len({o.customer.customer_id for o in orders})


@pytest.fixture
async def stoppable_postgres() -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    """A migrated PostgreSQL of the test's own, to stop and start (the machine's one is shared
    and must keep running); its server and the URL of its database."""
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="mgpg"))).start()
    url = await create_database(server.url, "mgrecs")
    await migrate_async(url)
    yield server, url
    server.wipe()


async def count_lines(url: str) -> int:
    """Lines in PostgreSQL, over a fresh connection (the server restarts under the test)."""
    conn = await asyncpg.connect(url)
    try:
        rows: int = await conn.fetchval("SELECT count(*) FROM order_items")
        return rows
    finally:
        await conn.close()


PG_DOWN_SECONDS = 4
"""Longer than the tracker's first retries (0.2 s doubling: 0.2, 0.6, 1.4, 3.0 s in); back
by the next one or the one after (6.2, 12.6 s)."""


async def test_postgres_down_mid_stream_then_back_loses_and_doubles_nothing(
    settings: Settings,
    service: Callable[..., ServiceProcess],
    stoppable_postgres: tuple[EmbeddedPostgres, str],
) -> None:
    server, url = stoppable_postgres
    lines = 12_000
    orders = orders_of(lines)
    before, during = split_lines(orders, lines // 2)
    tracker = service("tracker", "mgrecs-tracker", "--sink", "db", env={"MGRECS_DATABASE_URL": url})
    await publish_fast(settings, before)

    async def some_rows() -> bool:
        return await count_lines(url) >= 2_000

    await eventually(some_rows, timeout=60, interval=0.05)
    await asyncio.to_thread(server.stop)  # pg_ctl stop (fast): open connections are cut
    await publish_fast(settings, during)
    await asyncio.sleep(PG_DOWN_SECONDS)  # the tracker retries 4 or 5 times meanwhile
    assert tracker.alive(), tracker.log_tail()  # it waits for the database, it does not exit
    with pytest.raises(OSError):
        await count_lines(url)  # still down: nothing could have landed meanwhile
    await asyncio.to_thread(server.start)  # same data directory, same socket

    async def all_landed() -> bool:
        assert tracker.alive(), tracker.log_tail()
        return await count_lines(url) >= lines

    await eventually(all_landed, timeout=60, interval=0.5)
    await asyncio.sleep(2)  # a doubled batch would show now
    assert await tracker_metric(tracker, "mgrecs_tracker_retries_total", "db") > 0
    conn = await asyncpg.connect(url)
    try:
        await assert_exactly_in_postgres(conn, orders)
    finally:
        await conn.close()


ENGINE_DOWN_SECONDS = 10
"""At least this long (and until every line is in PostgreSQL): far longer than one call's
attempts take (5, 0.2 s doubling: 3 s), so without the breaker events would be dead-lettered."""


async def test_engine_down_db_sink_unaffected_then_events_drain_exactly_once(
    settings: Settings,
    pool: asyncpg.Pool,
    service: Callable[..., ServiceProcess],
) -> None:
    orders = orders_of(10_000)
    before, during = split_lines(orders, 2_000)
    first_engine = service("engine", "mgrecs-engine")
    # the default breaker probes 2, 6, 14, 24, 34 s into the outage: the backlog starts
    # draining at most 10 s after the engine is back
    tracker = service("tracker", "mgrecs-tracker", "--sink", "all")
    url = f"http://127.0.0.1:{settings.engine_port}"
    await asyncio.to_thread(wait_healthy, f"{url}/healthz", first_engine)  # both boot at once
    await publish_fast(settings, before)

    async def before_landed() -> bool:
        rows = await pool.fetchval("SELECT count(*) FROM order_items")
        events = (await engine_stats(url))["events_received"]
        return bool(rows >= line_count(before) and events >= line_count(before))

    await eventually(before_landed, timeout=60, interval=0.2)
    await asyncio.sleep(1.5)  # the last batch's offsets are committed after the next poll
    assert (await engine_stats(url))["events_received"] == line_count(before)

    assert first_engine.process is not None
    first_engine.process.kill()  # the next one reads its events back from engine-events
    first_engine.process.wait()
    down_at = time.monotonic()
    await publish_fast(settings, during)

    async def all_rows() -> bool:
        assert tracker.alive(), tracker.log_tail()
        rows: int = await pool.fetchval("SELECT count(*) FROM order_items")
        return rows >= line_count(orders)

    await eventually(all_rows, timeout=60, interval=0.2)  # the engine is still down
    await assert_exactly_in_postgres(pool, orders)
    dlq = topics.topic(topics.ORDERS_EVENTS_DLQ, settings)
    assert await read_topic(settings.kafka_bootstrap, dlq) == []
    assert await tracker_metric(tracker, "mgrecs_tracker_circuit_open", "events") == 1

    await asyncio.sleep(max(0.0, ENGINE_DOWN_SECONDS - (time.monotonic() - down_at)))
    _, url = await start_engine(settings, service)

    async def drained() -> bool:
        assert tracker.alive(), tracker.log_tail()
        return (await engine_stats(url))["events_received"] >= line_count(during)

    await eventually(drained, timeout=45, interval=0.5)
    await asyncio.sleep(2)  # anything still in flight would show now
    stats = await engine_stats(url)
    # exactly the outage's events: none lost, and none of the committed ones sent again;
    # the killed engine's, read back from the topic
    assert stats["events_received"] == line_count(during)
    assert stats["events_followed"] == line_count(before)
    assert stats["users_with_events"] == len({o.customer.customer_id for o in orders})
    assert await read_topic(settings.kafka_bootstrap, dlq) == []
    await assert_exactly_in_postgres(pool, orders)


async def publish_steadily(
    settings: Settings,
    orders: list[OrderEvent],
    published: list[OrderEvent],
    until: asyncio.Event,
    chunks_after: int = 5,
) -> None:
    """Publish in chunks of about 500 lines, 0.4 s apart (a stream, not a burst), onto
    `published`; stop `chunks_after` chunks after `until` is set, so that the stream goes on
    around it however long the machine takes to get there."""
    rest = orders
    while rest and chunks_after > 0:
        chunk, rest = split_lines(rest, 500)
        await publish_fast(settings, chunk)
        published += chunk
        chunks_after -= until.is_set()
        await asyncio.sleep(0.4)
    assert chunks_after == 0, "the orders ran out before the stream's end"


async def test_two_trackers_one_killed_during_a_rebalance_land_every_line_exactly_once(
    settings: Settings,
    pool: asyncpg.Pool,
    service: Callable[..., ServiceProcess],
    engine: str,
) -> None:
    published: list[OrderEvent] = []
    killed = asyncio.Event()  # B joins, and A dies, mid-stream
    first = service("tracker", "mgrecs-tracker", "--sink", "all")
    publishing = asyncio.create_task(
        publish_steadily(settings, orders_of(40_000), published, killed)
    )

    async def some_rows() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM order_items") >= 2_000)

    await eventually(some_rows, timeout=60, interval=0.1)
    second = service("tracker", "mgrecs-tracker", "--sink", "all")  # joins: a rebalance

    async def second_consuming() -> bool:
        assert second.alive(), second.log_tail()
        return await tracker_metric(second, "mgrecs_tracker_consumed_total", "db") > 0

    await eventually(second_consuming, timeout=60, interval=0.1)
    assert first.process is not None
    first.process.kill()  # mid-rebalance or right after: its batches are uncommitted
    first.process.wait()
    killed.set()
    rows_at_kill = await pool.fetchval("SELECT count(*) FROM order_items")
    await publishing
    orders, lines = published, line_count(published)
    assert rows_at_kill < lines

    async def all_landed() -> bool:
        assert second.alive(), second.log_tail()
        rows = await pool.fetchval("SELECT count(*) FROM order_items")
        return bool(rows >= lines and (await engine_stats(engine))["events_received"] >= lines)

    await eventually(all_landed, timeout=180, interval=0.5)
    await asyncio.sleep(2)  # anything still in flight would show now
    await assert_exactly_in_postgres(pool, orders)
    stats = await engine_stats(engine)
    assert stats["events_received"] == lines
    assert stats["users_with_events"] == len({o.customer.customer_id for o in orders})
