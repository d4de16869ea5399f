"""Fault tests of the tracker as a real process: `kill -9` in the middle of the stream.

The tracker (`mgrecs-tracker --sink all`) and the engine (`mgrecs-engine`) run as their own
processes against the test's broker and PostgreSQL, the way a deployment runs them.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from helpers import eventually
from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common import topics
from mgrecs.common.sample_data import generate
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings

LINES = 100_000
"""Order lines sent (the issue's figure); the orders are cut so the total is exact."""


def orders_of(lines: int) -> list[OrderEvent]:
    """Generated orders holding exactly `lines` lines (the last one trimmed)."""
    data = generate(
        seed=21, customers=8_000, products=1_500, orders=lines // 2, anchor=datetime.now(UTC)
    )
    orders: list[OrderEvent] = []
    total = 0
    for order in data.orders:
        take = min(len(order.lines), lines - total)
        orders.append(order.model_copy(update={"lines": order.lines[:take]}))
        total += take
        if total == lines:
            return orders
    raise AssertionError(f"generated only {total} lines")


def pairs_digest(pairs: list[tuple[str, int, str]]) -> str:
    """One hash of every (order, line, product), in key order: equal digests, equal rows."""
    text = "\n".join(f"{o}\t{n}\t{p}" for o, n, p in sorted(pairs))
    return hashlib.sha256(text.encode()).hexdigest()


async def publish_fast(settings: Settings, orders: list[OrderEvent]) -> None:
    """Send everything with producer batching (not one round trip per message)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        topic = topics.topic(topics.ORDERS, settings)
        pending = [
            await producer.send(topic, order.model_dump_json().encode(), key=order.key)
            for order in orders
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start a console script with the test's settings; each one is stopped at the end."""
    env = {
        "MGRECS_DATABASE_URL": settings.database_url,
        "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
        "MGRECS_ENGINE_PORT": str(settings.engine_port),
        "MGRECS_PERSONALIZE_ENDPOINT_URL": f"http://127.0.0.1:{settings.engine_port}",
        "MGRECS_LOG_LEVEL": "WARNING",
    }
    started: list[ServiceProcess] = []

    def start(name: str, *command: str) -> ServiceProcess:
        port = str(free_port())
        process = ServiceProcess(
            name,
            list(command),
            {**env, "MGRECS_TRACKER_METRICS_PORT": port},
            tmp_path / f"{name}-{len(started)}.log",
        )
        process.start()
        started.append(process)
        return process

    yield start
    stop_all(started)


@pytest.fixture
async def engine(settings: Settings, service: Callable[..., ServiceProcess]) -> AsyncIterator[str]:
    process = service("engine", "mgrecs-engine")
    url = f"http://127.0.0.1:{settings.engine_port}"
    await asyncio.to_thread(wait_healthy, f"{url}/healthz", process)
    yield url


async def engine_stats(url: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as client:
        stats: dict[str, int] = (await client.get(f"{url}/stats")).json()
        return stats


async def test_kill_9_mid_stream_then_restart_lands_every_line_exactly_once(
    settings: Settings,
    pool: asyncpg.Pool,
    service: Callable[..., ServiceProcess],
    engine: str,
) -> None:
    orders = orders_of(LINES)
    expected = [
        (o.order_id, n, line.product_id) for o in orders for n, line in enumerate(o.lines, 1)
    ]
    assert len(expected) == LINES
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

    rows = await pool.fetch("SELECT order_id, line_no, product_id FROM order_items")
    assert len(rows) == LINES
    assert pairs_digest([tuple(row) for row in rows]) == pairs_digest(expected)
    assert await pool.fetchval("SELECT count(*) FROM orders") == len(orders)
    assert await pool.fetchval("SELECT sum(quantity) FROM order_items") == sum(
        line.quantity for o in orders for line in o.lines
    )
    stats = await engine_stats(engine)
    # the engine counts an event id once: LINES accepted means each line's event exactly once
    assert stats["events_received"] == LINES
    assert stats["users_with_events"] == len({o.customer.customer_id for o in orders})
