"""Schedule ticks for the batch worker: build one, publish it, read back how it finished."""

from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from mgrecs.common import topics
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings


async def publish(settings: Settings, *values: bytes) -> None:
    """Send `values` to the test's schedule-ticks topic, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topics.topic(topics.SCHEDULE_TICKS, settings), value)
    finally:
        await producer.stop()


def tick(kind: str, tick_id: str | None = None) -> tuple[ScheduleTick, bytes]:
    """A tick of `kind` and its bytes on the wire."""
    message = (
        ScheduleTick(kind=kind) if tick_id is None else ScheduleTick(kind=kind, tick_id=tick_id)
    )
    return message, message.model_dump_json().encode()


async def finished(pool: asyncpg.Pool, tick_id: str) -> dict[str, Any] | None:
    """The detail the worker recorded when `tick_id` finished; None while it has not."""
    row = await pool.fetchrow(
        "SELECT detail FROM processed_ticks WHERE tick_id = $1 AND finished_at IS NOT NULL",
        tick_id,
    )
    return None if row is None else row["detail"]
