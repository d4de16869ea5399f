"""The `orders` topic as the tests use it: send orders, see whether a consumer group has read
them all, read back its dead letters."""

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from mgrecs.common import topics
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.common.topics import group_id
from support.helpers import read_topic


async def publish(settings: Settings, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topics.topic(topics.ORDERS, settings), value, key=key)
    finally:
        await producer.stop()


def as_messages(orders: list[OrderEvent]) -> list[tuple[bytes | None, bytes]]:
    return [(order.key, order.model_dump_json().encode()) for order in orders]


async def caught_up(settings: Settings, group: str, topic: str = topics.ORDERS) -> bool:
    """True when the group committed offsets up to the end of every partition of `topic`."""
    name = topics.topic(topic, settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(group, settings),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = await consumer.end_offsets(partitions)
        # >=: the embedded broker may report a high watermark a batch behind the commits.
        return all([(await consumer.committed(tp) or 0) >= end for tp, end in ends.items()])
    finally:
        await consumer.stop()


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every letter on `orders.dlq` right now."""
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS_DLQ, settings))
    return [DeadLetter.model_validate_json(record.value) for record in records]
