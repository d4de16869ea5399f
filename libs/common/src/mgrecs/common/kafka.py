"""Kafka plumbing shared by producers and consumers: topics and clients.

Every aiokafka client is made here (`make_producer`, `make_consumer`, `make_admin`), so each
connects the same way: TLS and SASL (PLAIN, SCRAM-SHA-256/512) as the settings say.
"""

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import DefaultPartitioner

from mgrecs.common import topics
from mgrecs.common.correlation import kafka_headers
from mgrecs.common.settings import Settings


def connection_options(settings: Settings) -> dict[str, Any]:
    """Where the brokers are and how to talk to them, as every aiokafka client takes it."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
    }
    context = tls_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the settings' certificates, when the protocol is SSL or SASL_SSL."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
    )
    return context


def make_consumer(settings: Settings, *topic_names: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of `topic_names` (none: assigned or subscribed later) with `options`."""
    return AIOKafkaConsumer(*topic_names, **connection_options(settings), **options)


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(settings))


async def ensure_topics(settings: Settings) -> None:
    """Create the platform's topics if they are missing, with their partitions, retention and
    `topic_replication_factor` (idempotent)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                topics.topic(name, settings),
                topics.PARTITIONS[name],
                settings.topic_replication_factor,
                topic_configs={"retention.ms": str(topics.retention_ms(name, settings))},
            )
            for name in topics.ALL_TOPICS
            if topics.topic(name, settings) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(wanted)
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of physical `topic`, in order."""
    admin = make_admin(settings)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(partition["partition"] for partition in described["partitions"])


class Batching(TypedDict):
    linger_ms: int
    max_batch_size: int


BATCHING = Batching(linger_ms=5, max_batch_size=256 * 1024)
"""How a producer of many messages at a time (orders, feedback) gathers them: up to 5 ms and
256 KiB a record batch."""


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer that waits for the broker to own each write (acks=all)."""
    return AIOKafkaProducer(**connection_options(settings), acks="all", **BATCHING)


_PARTITIONER = DefaultPartitioner()


@dataclass
class Keyed:
    """A message with its key and the partition that key maps to."""

    partition: int
    key: bytes | None
    value: bytes


def partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition a keyed `send` would choose (murmur2, as the Java client): every way in
    puts a customer's messages on the same partition, so they stay in order (no key: one at
    random, as `send` does)."""
    return int(_PARTITIONER(key, partitions, partitions))


async def send_batched(
    producer: AIOKafkaProducer, topic: str, messages: Iterable[Keyed]
) -> list["asyncio.Future[Any]"]:
    """Send `messages` as one record batch per partition (a new one when a batch is full):
    far less work per message than one `send` each. Returns the batches' ack futures. Each
    message carries the current request's id as a header (the consumers log it)."""
    headers = kafka_headers()
    batches: dict[int, Any] = {}
    acks = []
    for message in messages:
        batch = batches.get(message.partition)
        if batch is None:
            batch = batches[message.partition] = producer.create_batch()
        if (
            batch.append(key=message.key, value=message.value, timestamp=None, headers=headers)
            is None
        ):
            acks.append(await producer.send_batch(batch, topic, partition=message.partition))
            batch = batches[message.partition] = producer.create_batch()
            batch.append(key=message.key, value=message.value, timestamp=None, headers=headers)
    for partition, batch in batches.items():
        acks.append(await producer.send_batch(batch, topic, partition=partition))
    return acks
