"""The fault tests' means (tracker and system): generated orders cut to an exact number of
lines, sent fast, checked exactly once in PostgreSQL, and services started as real processes
(the `service` fixture)."""

import asyncio
import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common import topics
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.sample_data import generate


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


def split_lines(orders: list[OrderEvent], lines: int) -> tuple[list[OrderEvent], list[OrderEvent]]:
    """The first orders holding at least `lines` lines, and the rest."""
    total = 0
    for index, order in enumerate(orders):
        total += len(order.lines)
        if total >= lines:
            return orders[: index + 1], orders[index + 1 :]
    return orders, []


def line_count(orders: Sequence[OrderEvent]) -> int:
    """Lines, not orders: what PostgreSQL's order_items and the engine's events count."""
    return sum(len(order.lines) for order in orders)


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


async def assert_exactly_in_postgres(
    conn: asyncpg.Pool | asyncpg.Connection, orders: list[OrderEvent]
) -> None:
    """PostgreSQL holds each line of `orders` once, and nothing else: count, digest, sums."""
    expected = [
        (o.order_id, n, line.product_id) for o in orders for n, line in enumerate(o.lines, 1)
    ]
    rows = await conn.fetch("SELECT order_id, line_no, product_id FROM order_items")
    assert len(rows) == len(expected)
    assert pairs_digest([tuple(row) for row in rows]) == pairs_digest(expected)
    assert await conn.fetchval("SELECT count(*) FROM orders") == len(orders)
    assert await conn.fetchval("SELECT sum(quantity) FROM order_items") == sum(
        line.quantity for o in orders for line in o.lines
    )


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start a console script with the test's settings (`env` overrides some); each one is
    stopped at the end."""
    base_env = {
        "MGRECS_DATABASE_URL": settings.database_url,
        "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
        "MGRECS_ENGINE_PORT": str(settings.engine_port),
        "MGRECS_PERSONALIZE_ENDPOINT_URL": f"http://127.0.0.1:{settings.engine_port}",
        "MGRECS_LOG_LEVEL": "WARNING",
    }
    started: list[ServiceProcess] = []

    def start(name: str, *command: str, env: dict[str, str] | None = None) -> ServiceProcess:
        port = str(free_port())
        process = ServiceProcess(
            name,
            list(command),
            {**base_env, "MGRECS_TRACKER_METRICS_PORT": port, **(env or {})},
            tmp_path / f"{name}-{len(started)}.log",
        )
        process.start()
        started.append(process)
        return process

    yield start
    stop_all(started)


async def start_engine(
    settings: Settings, service: Callable[..., ServiceProcess]
) -> tuple[ServiceProcess, str]:
    """The engine on the test's engine port, once it answers; its process and URL."""
    process = service("engine", "mgrecs-engine")
    url = f"http://127.0.0.1:{settings.engine_port}"
    await asyncio.to_thread(wait_healthy, f"{url}/healthz", process)
    return process, url
