"""How the sinks consume: a FastStream batch subscriber that makes each batch durable, then
acknowledges it (commits its offsets).

Offsets are committed only after `handle` returned, so a crash or a stop in the middle of a
batch means the batch is read again (the sinks' writes are idempotent); batches are handled
one at a time, in order. (A plain aiokafka loop that parsed the next batch while writing one
measured no faster in `make bench-tracker`: bench/RESULTS.md.)
"""

import gc
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, Generic, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber
from structlog.contextvars import bound_contextvars

from mgrecs.common import channels, topics
from mgrecs.common.consume import Stopping, acknowledge_after, consuming, make_broker
from mgrecs.common.correlation import message_ids
from mgrecs.common.logging import get_logger
from mgrecs.common.records import Source, send_dead_letter
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
STOP_TIMEOUT_SECONDS = 60.0
"""How long a stop waits for the batch being written (a retry stops at once)."""

_LAGS: dict[str, dict[int, int]] = {}
"""Sink -> consumer (id of its worker) -> lag at its last poll."""


GC_THRESHOLDS = (50_000, 20, 20)
"""Allocations between young collections (Python's default: 700), and collections between
older ones. A batch's messages live until it is written, so with the default they outlived
a few collections and reached the oldest generation, which full collections walked again
and again: 13 % of the database sink's CPU (bench/RESULTS.md, 2026-12-07, issue 18 item 4:
tracker side). Now they are gone before the young collection that would promote them."""


def _freeze_startup() -> None:
    """What exists once a consumer runs (the loaded libraries, botocore's service models)
    lives as long as the process: kept out of the collector's sight, so that the
    collections the batches trigger walk the batches' objects, not the whole heap."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: parsing a batch builds thousands of small
    acyclic objects (the messages), and the collector, triggered by their count, would walk
    the ones built before again and again. The next allocation after it collects once."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class StoppedError(Exception):
    """The worker was asked to stop while it was waiting to retry."""


class ConsumerWorker(ABC, Generic[B]):
    """Consumes `topic` in group `group`; subclasses say how a batch of records becomes a
    `B` (`prepare`: CPU only, no I/O) and what a prepared batch does (`handle`). Each has
    its broker, with its channel's subscriber and dead-letter publisher."""

    sink: str
    channel: channels.Consumer
    """Its group, topic and dead-letter topic, as the AsyncAPI document shows them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = get_logger(f"mgrecs.tracker.{self.sink}").bind(sink=self.sink)
        self.stopping = Stopping()
        self.broker = make_broker(settings, graceful_timeout=STOP_TIMEOUT_SECONDS)
        self.subscriber: LogicSubscriber[Any] = channels.subscribe(
            self.broker,
            settings,
            self.channel,
            self._on_batch,
            batch=True,
            max_records=MAX_RECORDS,
            batch_timeout_ms=POLL_TIMEOUT_MS,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self.dlq_topic = topics.topic(self.channel.dlq, settings)
        self._dead_letters = channels.dead_letters(self.broker, settings, self.channel)

    async def ready(self) -> str:
        """`ok` once the consumer runs and the broker answers it (for `/readyz`)."""
        return await consuming(self.subscriber)

    @abstractmethod
    async def open(self, stack: AsyncExitStack) -> None:
        """Open what `handle` needs (pools, clients); `stack` closes them at the end."""

    @abstractmethod
    def prepare(self, records: list[Record]) -> B:
        """Parse `records` (CPU only: it must not touch the target itself)."""

    @abstractmethod
    async def handle(self, batch: B) -> None:
        """Make the effect of `batch` durable; raise StoppedError when stopped first."""

    async def run(self) -> None:
        """Consume until `stop()`; a batch that fails (not a target that is down: that is
        retried) ends the run with its error."""
        async with AsyncExitStack() as stack:
            await self.open(stack)
            await self.broker.start()
            stack.push_async_callback(self.broker.stop)  # lets the batch being written finish
            _freeze_startup()
            self.log.info("consuming", group=topics.group_id(self.channel.group, self.settings))
            await self.stopping.wait()
        self.log.info("stopped")
        if self.stopping.error is not None:
            raise self.stopping.error

    async def _on_batch(self, message: KafkaMessage) -> None:
        """Prepare and handle one batch, then acknowledge it (commit its offsets); not when
        stopped first (it is read again) nor when handling it failed (that ends the run)."""
        records: list[Record] = list(message.raw_message)
        await acknowledge_after(message, self.stopping, lambda: self._consume(records))

    async def _consume(self, records: list[Record]) -> bool:
        """Prepare and handle `records`; False when stopped while a target was down."""
        consumer = self.subscriber.consumer
        if not records or consumer is None:
            return False
        with collector_paused():
            prepared = self.prepare(records)
        CONSUMED.labels(self.sink).inc(len(records))
        offsets = {TopicPartition(r.topic, r.partition): r.offset + 1 for r in records}
        self._observe_lag(consumer, offsets)
        try:
            await self._handle_timed(records, prepared)
        except StoppedError:
            return False
        self._observe_end_to_end([record.timestamp for record in records])
        return True

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

    def _observe_end_to_end(self, published_ms: list[int]) -> None:
        """Seconds from each record's broker timestamp (its producer's send time) to now."""
        now_ms = time.time() * 1000
        histogram = END_TO_END_SECONDS.labels(self.sink)
        for published in published_ms:
            histogram.observe(max(now_ms - published, 0) / 1000)

    async def stop(self) -> None:
        self.stopping.stop()

    async def dead_letter(self, source: Source, reason: str) -> None:
        """Publish `source`'s dead letter to the sink's `dlq`, retrying while the broker is
        unavailable."""
        await self.retrying(
            lambda: send_dead_letter(self._dead_letters.publish, self.dlq_topic, source, reason),
            (KafkaError,),
            "dlq",
        )

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
        if await self.stopping.pause(seconds):
            raise StoppedError
