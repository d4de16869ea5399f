"""The broker restarted while orders stream in: the tracker reconnects, and every line lands
in PostgreSQL and in the engine exactly once (the fast test of `make drill`'s restart).

The test's own broker keeps its topics in an in-memory S3 server (`ObjectStore`), so its
restart is a real one that keeps the data, as Apache Kafka's would.
"""

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import pytest
from aiokafka.errors import KafkaError

from mgrecs.cli.embedded import EmbeddedBroker
from mgrecs.cli.processes import ServiceProcess
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from support import faults
from support.helpers import engine_stats, eventually

LINES = 10_000


@pytest.fixture
async def broker_settings(settings: Settings, durable_broker: EmbeddedBroker) -> Settings:
    """The test's settings on its own restartable broker."""
    moved = settings.model_copy(
        update={
            "kafka_bootstrap": durable_broker.bootstrap,
            "topic_prefix": f"r{uuid.uuid4().hex[:8]}-",
        }
    )
    await ensure_topics(moved)
    return moved


async def publish_until_acknowledged(settings: Settings, orders: list[OrderEvent]) -> None:
    """Publish, trying again while the broker is coming back (a resent order is harmless)."""
    for _ in range(60):
        try:
            await faults.publish_fast(settings, orders)
            return
        except KafkaError:
            await asyncio.sleep(1)
    raise AssertionError("the broker did not come back within a minute")


async def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    broker_settings: Settings,
    durable_broker: EmbeddedBroker,
    pool: asyncpg.Pool,
    service: Callable[..., ServiceProcess],
) -> None:
    orders = faults.orders_of(LINES)
    before, after = faults.split_lines(orders, LINES // 2)
    env = {"MGRECS_KAFKA_BOOTSTRAP": broker_settings.kafka_bootstrap}
    env["MGRECS_TOPIC_PREFIX"] = broker_settings.topic_prefix
    _, engine = await faults.start_engine(broker_settings, service)
    tracker = service("tracker", "mgrecs-tracker", "--sink", "all", env=env)
    await faults.publish_fast(broker_settings, before)

    async def some_rows() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM order_items") >= 1_000)

    await eventually(some_rows, timeout=120, interval=0.05)
    await asyncio.to_thread(durable_broker.restart)
    await publish_until_acknowledged(broker_settings, after)

    async def all_landed() -> bool:
        assert tracker.alive(), tracker.log_tail()
        rows = await pool.fetchval("SELECT count(*) FROM order_items")
        events = (await engine_stats(engine))["events_received"]
        return bool(rows >= LINES and events >= LINES)

    await eventually(all_landed, timeout=240, interval=0.5)
    await asyncio.sleep(2)  # a doubled batch would show now
    assert faults.line_count(orders) == LINES
    await faults.assert_exactly_in_postgres(pool, orders)
    assert (await engine_stats(engine))["events_received"] == LINES
