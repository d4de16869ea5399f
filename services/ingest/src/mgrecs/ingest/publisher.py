"""Publishing orders to Kafka and waiting for the broker's acks, through the FastStream
publishers `channels` declares for `orders` and `orders.dlq` (the AsyncAPI document's).

The broker connects lazily and a failed connection is undone, so the ingest service comes up
(and answers 503) while the broker is down, and recovers by itself when it is back.
"""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaResponse
from faststream.kafka.publisher.usecase import BatchPublisher

from mgrecs.common import channels, topics
from mgrecs.common.consume import answering, make_broker
from mgrecs.common.correlation import publish_headers
from mgrecs.common.kafka import BATCHING, partitions_of
from mgrecs.common.logging import get_logger
from mgrecs.common.records import send_dead_letter
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings

PUBLISH_TIMEOUT_SECONDS = 15.0
log = get_logger(__name__)


_PARTITIONER = DefaultPartitioner()


@dataclass
class Keyed:
    """A message with its key and the partition that key maps to."""

    partition: int
    key: bytes
    value: bytes


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition a keyed `send` would choose (murmur2, as the Java client): every way in
    puts a customer's orders on the same partition, so they stay in order."""
    return int(_PARTITIONER(key, partitions, partitions))


def order_bytes(order: OrderEvent) -> bytes:
    return order.model_dump_json().encode()


RECORD_OVERHEAD = 320
"""Bytes a record may add to its key and value in a batch (lengths, timestamp, and the headers:
FastStream's content type and correlation id, the request id of at most 128 characters)."""
BATCH_BYTES = BATCHING["max_batch_size"] - 1024
"""What a batch's records may take, so that the producer's batch never overflows."""


async def publish_batched(
    publisher: BatchPublisher, messages: Iterable[Keyed]
) -> list["asyncio.Future[Any]"]:
    """Publish `messages` as one record batch per partition (a new one when a batch is full):
    far less work per message than one `publish` each. Returns the batches' ack futures. Each
    message carries the current request's id as a header (the consumers log it)."""
    headers = publish_headers()
    batches: dict[int, list[KafkaResponse]] = {}
    sizes: dict[int, int] = {}
    acks = []
    for message in messages:
        size = len(message.key) + len(message.value) + RECORD_OVERHEAD
        batch = batches.setdefault(message.partition, [])
        if batch and sizes[message.partition] + size > BATCH_BYTES:
            acks.append(await _publish(publisher, message.partition, batch, headers))
            batch = batches[message.partition] = []
            sizes[message.partition] = 0
        batch.append(KafkaResponse(message.value, key=message.key))
        sizes[message.partition] = sizes.get(message.partition, 0) + size
    for partition, batch in batches.items():
        acks.append(await _publish(publisher, partition, batch, headers))
    return acks


async def _publish(
    publisher: BatchPublisher, partition: int, batch: list[KafkaResponse], headers: dict[str, str]
) -> "asyncio.Future[Any]":
    sent: asyncio.Future[Any] = await publisher.publish(
        *batch, partition=partition, headers=headers, no_confirm=True
    )
    return sent


class BrokerUnavailableError(RuntimeError):
    """The broker could not be reached or did not acknowledge the writes in time."""


class OrderPublisher:
    """The one broker connection of an ingest process, shared by all requests."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = topics.topic(topics.ORDERS, settings)
        self._dlq_topic = topics.topic(topics.ORDERS_DLQ, settings)
        self._broker = make_broker(settings, batching=True)
        self._orders = channels.batch_publisher(self._broker, settings, channels.ORDERS)
        self._dead_letters = channels.dead_letters(self._broker, settings, channels.TRACKER_DB)
        self._partitions: list[int] = []
        self._lock = asyncio.Lock()

    async def _connected(self) -> list[int]:
        """Connect once (a failed attempt is undone, so the next call retries); the partitions
        of `orders`, read once per connection."""
        async with self._lock:
            if not self._partitions:
                try:
                    async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                        await self._broker.start()
                        self._partitions = await partitions_of(self._settings, self._topic)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await self._broker.stop()
                    raise BrokerUnavailableError(f"Kafka is unreachable: {exc!r}") from exc
            return self._partitions

    async def start(self) -> None:
        """Connect early when possible; a broker that is down now is retried on first use."""
        try:
            await self._connected()
        except BrokerUnavailableError as exc:
            log.warning("kafka_unavailable_at_start", error=str(exc))

    async def publish(self, orders: Sequence[OrderEvent]) -> None:
        """Send every order keyed by customer id; return once the broker acked them all."""
        partitions = await self._connected()
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                messages = [
                    Keyed(partition_of(order.key, partitions), order.key, order_bytes(order))
                    for order in orders
                ]
                await asyncio.gather(*await publish_batched(self._orders, messages))
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError(f"Kafka did not acknowledge the orders: {exc!r}") from exc

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Send records that could not become orders to `orders.dlq`; return once acked."""
        await self._connected()
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                for letter in letters:
                    await send_dead_letter(self._dead_letters.publish, self._dlq_topic, letter)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"Kafka did not acknowledge dead letters: {exc!r}"
            ) from exc

    async def healthy(self) -> bool:
        """True when the cluster answers a metadata request."""
        try:
            await self._connected()
            return await asyncio.wait_for(answering(self._broker), 5) == "ok"
        except (BrokerUnavailableError, KafkaError, TimeoutError):
            return False

    async def close(self) -> None:
        async with self._lock:
            if self._partitions:
                await self._broker.stop()
                self._partitions = []
