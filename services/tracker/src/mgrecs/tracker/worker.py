"""The consume loop the sinks share: poll a batch, make it durable, then commit.

Offsets are committed only after `handle` returned, so a crash or a stop in the middle of a
batch means the batch is read again (the sinks' writes are idempotent). The next batch is
fetched and prepared (parsed) while one is being handled; batches are handled one at a time,
in order.
"""

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from structlog.contextvars import bound_contextvars

from mgrecs.common import topics
from mgrecs.common.correlation import message_ids
from mgrecs.common.kafka import make_consumer
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.tracker.metrics import (
    BATCH_SECONDS,
    CONSUMED,
    CONSUMER_LAG,
    END_TO_END_SECONDS,
    RETRIES,
)

T = TypeVar("T")
B = TypeVar("B")
Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

MAX_RECORDS = 2000
POLL_TIMEOUT_MS = 500
FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 100
"""A fetch waits for 256 KiB (about 700 orders) or 100 ms, whichever comes first: under load
fewer, fuller fetches (less work per order for the broker and the consumer), at most 0.1 s
more latency when the stream is quiet."""
BACKOFF_START = 0.2
BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class InFlight:
    """A batch being made durable, and the offsets to commit once it is."""

    task: "asyncio.Task[None]"
    offsets: dict[TopicPartition, int]
    published_ms: list[int]
    """The records' broker timestamps (their producers' send time), for end-to-end latency."""


_LAGS: dict[str, dict[int, int]] = {}
"""Sink -> consumer (id of its worker) -> lag at its last poll."""


class StoppedError(Exception):
    """The worker was asked to stop while it was waiting to retry."""


class ConsumerWorker(ABC, Generic[B]):
    """Consumes `topic` in group `group`; subclasses say how a batch of records becomes a
    `B` (`prepare`: CPU only, no I/O) and what a prepared batch does (`handle`)."""

    sink: str
    group: str
    topic: str = topics.ORDERS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = get_logger(f"mgrecs.tracker.{self.sink}").bind(sink=self.sink)
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def ready(self) -> str:
        """`ok` once the consumer runs and the broker answers it (for `/readyz`)."""
        if self._consumer is None:
            return "not consuming yet"
        await self._consumer.topics()  # a metadata request to the cluster
        return "ok"

    @abstractmethod
    async def open(self, stack: AsyncExitStack) -> None:
        """Open what `handle` needs (pools, clients); `stack` closes them at the end."""

    @abstractmethod
    def prepare(self, records: list[Record]) -> B:
        """Parse `records`. Runs while the previous batch's `handle` waits on its target, so
        the parsing overlaps the writing; it must not touch the target itself."""

    @abstractmethod
    async def handle(self, batch: B) -> None:
        """Make the effect of `batch` durable; raise StoppedError when stopped first."""

    async def run(self) -> None:
        consumer = make_consumer(
            self.settings,
            topics.topic(self.topic, self.settings),
            group_id=topics.group_id(self.group, self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        try:
            async with AsyncExitStack() as stack:
                await self.open(stack)
                await consumer.start()
                stack.push_async_callback(consumer.stop)
                self._consumer = consumer
                stack.callback(setattr, self, "_consumer", None)
                self.log.info("consuming", group=topics.group_id(self.group, self.settings))
                await self._consume(consumer)
        except StoppedError:
            pass  # stopped while a target was down: the uncommitted batch is read again
        self.log.info("stopped")

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Poll and prepare the next batch while the previous one is made durable, then commit
        exactly the previous batch's offsets: the broker round trip and the parsing overlap
        the sink's writes."""
        in_flight: InFlight | None = None
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS
                )
                records = [record for batch in batches.values() for record in batch]
                if records:
                    prepared = self.prepare(records)  # while the previous batch is written
                if in_flight is not None:
                    await self._finish(consumer, in_flight)
                    in_flight = None
                if records:
                    CONSUMED.labels(self.sink).inc(len(records))
                    offsets = {tp: batch[-1].offset + 1 for tp, batch in batches.items() if batch}
                    self._observe_lag(consumer, offsets)
                    in_flight = InFlight(
                        asyncio.create_task(self._handle_timed(records, prepared)),
                        offsets,
                        [record.timestamp for record in records],
                    )
            if in_flight is not None:
                await self._finish(consumer, in_flight)
                in_flight = None
        finally:
            if in_flight is not None:  # an error while polling: drop the batch, read it again
                in_flight.task.cancel()
                await asyncio.gather(in_flight.task, return_exceptions=True)

    async def _handle_timed(self, records: list[Record], batch: B) -> None:
        """`handle`, timed, with the batch's message ids in the log context: the request ids
        its producers sent (else topic/partition/offset), so a request can be followed."""
        with bound_contextvars(message_ids=message_ids(records)):
            with BATCH_SECONDS.labels(self.sink).time():
                await self.handle(batch)
            self.log.info("batch_handled", records=len(records))

    def _observe_lag(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Messages behind the partitions' ends, for the partitions this poll returned,
        summed over the sink's consumers in this process."""
        ends = {tp: consumer.highwater(tp) for tp in offsets}
        lags = _LAGS.setdefault(self.sink, {})
        lags[id(self)] = sum(
            max(end - offsets[tp], 0) for tp, end in ends.items() if end is not None
        )
        CONSUMER_LAG.labels(self.sink).set(sum(lags.values()))

    async def _finish(self, consumer: AIOKafkaConsumer, in_flight: "InFlight") -> None:
        await in_flight.task
        now_ms = time.time() * 1000
        histogram = END_TO_END_SECONDS.labels(self.sink)
        for published_ms in in_flight.published_ms:
            histogram.observe(max(now_ms - published_ms, 0) / 1000)
        try:
            await consumer.commit(in_flight.offsets)
        except KafkaError as exc:
            # Typically a rebalance: the new owner reads the batch again, harmlessly.
            self.log.warning("commit_failed", error=repr(exc))

    async def stop(self) -> None:
        self._stopping.set()

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
            await self.pause(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`; raise StoppedError as soon as the worker is asked to stop."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise StoppedError
