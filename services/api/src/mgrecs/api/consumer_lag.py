"""Consumer lag of the tracker's groups: the orders each sink has yet to take, from the
groups' committed offsets against the end offsets of topic `orders`. Asked of the broker on
each status request (admin only, so rare) under a timeout: an unreachable broker is
reported in the answer, never raised."""

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from mgrecs.common import topics
from mgrecs.common.settings import Settings

TRACKER_GROUPS = ("mgrecs-tracker-db", "mgrecs-tracker-events")
"""The tracker sinks' consumer groups (`ConsumerWorker.group`; a test keeps them equal)."""
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
    error: str | None = None
    """Why no figures could be had (the broker unreachable), else None."""


async def tracker_lag(settings: Settings, timeout: float = TIMEOUT_SECONDS) -> LagReport:
    try:
        async with asyncio.timeout(timeout):
            return LagReport(await _measure(settings))
    except (KafkaError, OSError, TimeoutError) as exc:
        return LagReport([], f"broker {settings.kafka_bootstrap} unreachable: {exc!r}")


async def _measure(settings: Settings) -> list[GroupLag]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        await admin.start()
        await consumer.start()
        topic = topics.topic(topics.ORDERS, settings)
        await consumer.topics()  # fetches the cluster metadata
        partitions = [
            TopicPartition(topic, number)
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        lags = []
        for name in TRACKER_GROUPS:
            group = f"{settings.topic_prefix}{name}"
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            lag = sum(max(0, ends[tp] - committed.get(tp, starts[tp])) for tp in partitions)
            lags.append(GroupLag(name, lag, bool(committed)))
        return lags
    finally:
        await consumer.stop()
        await admin.close()
