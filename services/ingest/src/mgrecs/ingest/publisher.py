"""Publishing orders (and catalogue records) to Kafka and waiting for the broker's acks.

Ingest's hot path, so a plain aiokafka producer (as `kafka.make_producer` builds it) and
`kafka.send_batched`, not a FastStream publisher (the api's served-list recorder does the
same): a FastStream batch publisher cost about 11 % of `make bench-ingest`'s backfill
throughput (bench/RESULTS.md, "2026-12-06, issue 17"). Topic `orders` is declared in the
AsyncAPI document all the same (`channels.ORDERS`).

The producer starts lazily and is replaced after a failed start, so the ingest service comes up
(and answers 503) while the broker is down, and recovers by itself when it is back.
"""

import asyncio
import functools
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.kafka import Keyed, make_producer, partition_of, send_batched
from mgrecs.common.logging import get_logger
from mgrecs.common.records import send_dead_letter
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings

PUBLISH_TIMEOUT_SECONDS = 15.0
log = get_logger(__name__)


def order_bytes(order: OrderEvent) -> bytes:
    return order.model_dump_json().encode()


class BrokerUnavailableError(RuntimeError):
    """The broker could not be reached or did not acknowledge the writes in time."""


class OrderPublisher:
    """The one producer of an ingest process, shared by all requests."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = topics.topic(topics.ORDERS, settings)
        self._dlq_topic = topics.topic(topics.ORDERS_DLQ, settings)
        self._products_topic = topics.topic(topics.PRODUCTS, settings)
        self._products_dlq_topic = topics.topic(topics.PRODUCTS_DLQ, settings)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self._settings)
                try:
                    await asyncio.wait_for(producer.start(), PUBLISH_TIMEOUT_SECONDS)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise BrokerUnavailableError(f"Kafka is unreachable: {exc!r}") from exc
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        """Connect early when possible; a broker that is down now is retried on first use."""
        try:
            await self._ready_producer()
        except BrokerUnavailableError as exc:
            log.warning("kafka_unavailable_at_start", error=str(exc))

    async def publish(self, orders: Sequence[OrderEvent]) -> None:
        """Send every order keyed by customer id; return once the broker acked them all."""
        await self._publish(self._topic, [(order.key, order_bytes(order)) for order in orders])

    async def publish_products(self, products: Sequence[ProductEvent]) -> None:
        """Send every catalogue record to `products` keyed by product id; return once the
        broker acked them all."""
        await self._publish(
            self._products_topic,
            [(product.key, product.model_dump_json().encode()) for product in products],
        )

    async def _publish(self, topic: str, keyed: list[tuple[bytes, bytes]]) -> None:
        producer = await self._ready_producer()
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                partitions = sorted(await producer.partitions_for(topic))
                messages = [Keyed(partition_of(k, partitions), k, value) for k, value in keyed]
                await asyncio.gather(*await send_batched(producer, topic, messages))
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError(f"Kafka did not acknowledge the writes: {exc!r}") from exc

    async def dead_letter(self, letters: Sequence[DeadLetter], products: bool = False) -> None:
        """Send records that could not become orders to `orders.dlq` (catalogue records, with
        `products`, to `products.dlq`); return once acked."""
        if not letters:
            return
        producer = await self._ready_producer()
        dlq = self._products_dlq_topic if products else self._dlq_topic
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                for letter in letters:
                    send = functools.partial(producer.send_and_wait, dlq)
                    await send_dead_letter(send, dlq, letter)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"Kafka did not acknowledge dead letters: {exc!r}"
            ) from exc

    async def healthy(self) -> bool:
        """True when the cluster answers a metadata request."""
        try:
            producer = await self._ready_producer()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 5)
        except (BrokerUnavailableError, KafkaError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
