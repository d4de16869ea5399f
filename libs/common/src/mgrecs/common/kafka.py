"""Kafka plumbing shared by producers and consumers: topics, producer, dead letters, ticks."""

import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from mgrecs.common import topics
from mgrecs.common.metrics import DEAD_LETTERS
from mgrecs.common.schemas import DeadLetter, ScheduleTick, TickKind
from mgrecs.common.settings import Settings


async def ensure_topics(settings: Settings) -> None:
    """Create the platform's topics if they are missing, with their partitions and retention
    (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                topics.topic(name, settings),
                topics.PARTITIONS[name],
                1,
                topic_configs={"retention.ms": str(topics.RETENTION_MS[name])},
            )
            for name in topics.ALL_TOPICS
            if topics.topic(name, settings) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer that waits for the broker to own each write (acks=all)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )


async def send_dead_letter(producer: AIOKafkaProducer, dlq_topic: str, letter: DeadLetter) -> None:
    """Publish a message no consumer could handle, with the reason, keeping its key."""
    await producer.send_and_wait(
        dlq_topic,
        value=letter.model_dump_json().encode(),
        key=letter.key.encode() if letter.key else None,
    )
    DEAD_LETTERS.labels(dlq_topic).inc()


async def publish_tick(
    settings: Settings, kind: TickKind, tick_id: str | None = None
) -> ScheduleTick:
    """Publish one schedule tick (a fresh id unless given); returns it, so callers can wait
    for its job."""
    tick = ScheduleTick(kind=kind) if tick_id is None else ScheduleTick(kind=kind, tick_id=tick_id)
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.topic(topics.SCHEDULE_TICKS, settings), tick.model_dump_json().encode()
        )
    finally:
        await producer.stop()
    return tick
