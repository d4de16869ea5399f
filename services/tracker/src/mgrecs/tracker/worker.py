"""The consume loop both sinks share: poll a batch, make it durable, then commit.

Offsets are committed only after `handle` returned, so a crash or a stop in the middle of a
batch means the batch is read again (the sinks' writes are idempotent).
"""

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from mgrecs.common import topics
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.tracker.metrics import BATCH_SECONDS, CONSUMED, RETRIES

T = TypeVar("T")
Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

MAX_RECORDS = 2000
POLL_TIMEOUT_MS = 500
BACKOFF_START = 0.2
BACKOFF_MAX = 30.0


class StoppedError(Exception):
    """The worker was asked to stop while it was waiting to retry."""


def group_id(name: str, settings: Settings) -> str:
    """Consumer groups get the topic prefix too, so tenants sharing a broker stay apart."""
    return f"{settings.topic_prefix}{name}"


class ConsumerWorker(ABC):
    """Consumes topic `orders` in group `group`; subclasses say what a batch does."""

    sink: str
    group: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = get_logger(f"mgrecs.tracker.{self.sink}").bind(sink=self.sink)
        self._stopping = asyncio.Event()

    @abstractmethod
    async def open(self, stack: AsyncExitStack) -> None:
        """Open what `handle` needs (pools, clients); `stack` closes them at the end."""

    @abstractmethod
    async def handle(self, records: list[Record]) -> None:
        """Make the effect of `records` durable; raise StoppedError when stopped first."""

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            topics.topic(topics.ORDERS, self.settings),
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=group_id(self.group, self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            async with AsyncExitStack() as stack:
                await self.open(stack)
                await consumer.start()
                stack.push_async_callback(consumer.stop)
                self.log.info("consuming", group=group_id(self.group, self.settings))
                while not self._stopping.is_set():
                    await self._poll_and_handle(consumer)
        except StoppedError:
            pass  # stopped while a target was down: the uncommitted batch is read again
        self.log.info("stopped")

    async def _poll_and_handle(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS)
        records = [record for batch in batches.values() for record in batch]
        if records:
            CONSUMED.labels(self.sink).inc(len(records))
            with BATCH_SECONDS.labels(self.sink).time():
                await self.handle(records)
            await self._commit(consumer)

    async def stop(self) -> None:
        self._stopping.set()

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await consumer.commit()
        except KafkaError as exc:
            # Typically a rebalance: the new owner reads the batch again, harmlessly.
            self.log.warning("commit_failed", error=repr(exc))

    async def retrying(
        self,
        action: Callable[[], Awaitable[T]],
        retry_on: tuple[type[BaseException], ...],
        what: str,
    ) -> T:
        """Run `action` until it succeeds, backing off exponentially between failures."""
        delay = BACKOFF_START
        while True:
            try:
                return await action()
            except retry_on as exc:
                RETRIES.labels(self.sink).inc()
                self.log.warning("retrying", what=what, error=repr(exc), in_seconds=delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, BACKOFF_MAX)
            else:
                raise StoppedError
