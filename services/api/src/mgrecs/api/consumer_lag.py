"""Consumer lag of the tracker's groups: the orders (and served lists) each sink has yet to
take, from the groups' committed offsets against the end offsets of its topic; and the
records held by each dead-letter topic (end minus beginning offsets: retention may have
dropped older ones). Asked of the broker on each status request (admin only, so rare)
under a timeout: an unreachable broker is reported in the answer, never raised."""

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from mgrecs.common import topics
from mgrecs.common.kafka import make_admin, make_consumer
from mgrecs.common.settings import Settings

DEAD_LETTER_TOPICS = (
    topics.ORDERS_DLQ,
    topics.ORDERS_EVENTS_DLQ,
    topics.SCHEDULE_TICKS_DLQ,
    topics.INFER_SHARDS_DLQ,
    topics.FEEDBACK_DLQ,
    topics.PRODUCTS_DLQ,
    topics.SERVED_DLQ,
)
LAGGED = (
    (topics.ORDERS, topics.TRACKER_ORDER_GROUPS),
    (topics.SERVED, (topics.TRACKER_SERVED_GROUP,)),
)
"""The groups whose lag is reported, by the topic they read."""
TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class GroupLag:
    group: str
    lag: int
    """Records on the topic the group has not committed (from the start when it never did)."""
    committed: bool
    """Whether the group has committed an offset on any partition."""


@dataclass(frozen=True)
class LagReport:
    groups: list[GroupLag]
    dead_letters: dict[str, int]
    """Records on each dead-letter topic (by its unprefixed name)."""
    error: str | None = None
    """Why no figures could be had (the broker unreachable), else None."""


async def tracker_lag(settings: Settings, timeout: float = TIMEOUT_SECONDS) -> LagReport:
    try:
        async with asyncio.timeout(timeout):
            return await _measure(settings)
    except (KafkaError, OSError, TimeoutError) as exc:
        return LagReport([], {}, f"broker {settings.kafka_bootstrap} unreachable: {exc!r}")


async def _measure(settings: Settings) -> LagReport:
    admin = make_admin(settings)
    consumer = make_consumer(settings)
    try:
        await admin.start()
        await consumer.start()
        await consumer.topics()  # fetches the cluster metadata
        lags = []
        for topic, groups in LAGGED:
            partitions = _partitions(consumer, topics.topic(topic, settings))
            if not partitions:
                continue
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            for name in groups:
                group = topics.group_id(name, settings)
                offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
                committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
                lag = sum(max(0, ends[tp] - committed.get(tp, starts[tp])) for tp in partitions)
                lags.append(GroupLag(name, lag, bool(committed)))
        return LagReport(lags, await _dead_letters(consumer, settings))
    finally:
        await consumer.stop()
        await admin.close()


def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    return [
        TopicPartition(topic, number)
        for number in sorted(consumer.partitions_for_topic(topic) or ())
    ]


async def _dead_letters(consumer: AIOKafkaConsumer, settings: Settings) -> dict[str, int]:
    counts = {}
    for name in DEAD_LETTER_TOPICS:
        partitions = _partitions(consumer, topics.topic(name, settings))
        if not partitions:
            counts[name] = 0
            continue
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        counts[name] = sum(ends[tp] - starts[tp] for tp in partitions)
    return counts
