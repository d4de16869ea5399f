"""Recording what the api answered on topic `served` (docs/concepts.md, Impact) without
slowing the answers.

On the request path `record` appends one tuple to a bounded in-memory queue: no validation,
no I/O, nothing awaited. A queue at `served_queue_size` drops the answer and counts it
(`mgrecs_served_dropped_total{reason="queue_full"}`). A background task (`run`, started by
the lifespan: `start`) takes up to `served_batch_size` answers, or what came within
`served_batch_seconds` of the first, builds their `ServedList` messages (an id each), keyed by
customer, else region, else product, and hands them to a plain aiokafka producer of the
recorder's own as one record batch per partition (`kafka.send_batched`, as ingest does): a
FastStream publish per answer was most of the recording's cost (bench/RESULTS.md, issue 20).
A batch the broker does not take within `SEND_TIMEOUT_SECONDS` (down, unreachable) is
dropped and counted (`reason="broker"`); while the broker cannot be connected to, a new
attempt is made at most every `RECONNECT_SECONDS` and the batches in between are dropped the
same way.
"""

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter
from pydantic import ValidationError

from mgrecs.api.schemas.experiments import ExperimentTag
from mgrecs.common import topics
from mgrecs.common.kafka import Keyed, make_producer, partition_of, send_batched
from mgrecs.common.logging import get_logger
from mgrecs.common.served import ServedEndpoint, ServedList
from mgrecs.common.settings import Settings

log = get_logger(__name__)

SEND_TIMEOUT_SECONDS = 5.0
"""How long the broker has to take one batch (and to be connected to) before it is dropped."""
RECONNECT_SECONDS = 5.0
"""After a failed send, batches are dropped without trying for this long."""
YIELD_EVERY = 4
"""Answers built between two returns to the event loop: about 0.05 ms of CPU (some 12 µs
each, nearly all of it pydantic's validation and JSON). A request that becomes ready during
one slice waits for it and the next (`sleep(0)` queues the recorder before it), so slices
are kept short; handing a batch to the producer (some 0.15 ms for 50 answers) is its own
step."""

RECORDED = Counter(
    "mgrecs_served_recorded_total", "Answers the broker took on topic `served`", ["endpoint"]
)
DROPPED = Counter(
    "mgrecs_served_dropped_total",
    "Answers not recorded on `served`: queue_full (the queue was at served_queue_size), "
    "broker (the broker did not take their batch), invalid (not a valid ServedList)",
    ["reason"],
)
for _reason in ("queue_full", "broker", "invalid"):
    DROPPED.labels(_reason)  # shown at 0 from the start: "0 dropped" is a figure


class HasProductId(Protocol):
    @property
    def product_id(self) -> str: ...


Entry = tuple[
    datetime,
    ServedEndpoint,
    str | None,
    str | None,
    str | None,
    tuple[str, ...],
    str,
    str | None,
    str | None,
    str | None,
    tuple[int, ...],
]
"""One answer as `record` queues it (the message is built in the background): times, texts
and tuples of them only, which the garbage collector stops tracking, so a queue of answers
costs its collections nothing (the answers' item objects would stay alive, and be walked,
until their batch is sent)."""


class ServedRecorder:
    """The api process's recorder: `record` on the request path, `start` (`run` in the
    background), `close` at shutdown (what is queued then is sent, within the send timeout;
    then the producer stops)."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.enabled = settings.served_recording
        self._settings = settings
        self._clock = clock
        self._topic = topics.topic(topics.SERVED, settings)
        self._producer: AIOKafkaProducer | None = None
        self._limit = settings.served_queue_size
        self._batch_size = settings.served_batch_size
        self._batch_seconds = settings.served_batch_seconds
        self._queue: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._down_until = float("-inf")
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        endpoint: ServedEndpoint,
        items: Sequence[HasProductId],
        source: str,
        *,
        customer_id: str | None = None,
        region: str | None = None,
        product_id: str | None = None,
        model_version: str | None = None,
        experiment: ExperimentTag | None = None,
        rule_ids: tuple[int, ...] = (),
    ) -> None:
        """Queue one answer (`items` in slot order); never waits, never raises for a full
        queue (it counts the drop)."""
        if not self.enabled:
            return
        queue = self._queue
        if len(queue) >= self._limit:
            DROPPED.labels("queue_full").inc()
            return
        queue.append(
            (
                self._clock(),
                endpoint,
                customer_id,
                region,
                product_id,
                tuple([item.product_id for item in items]),
                source,
                model_version,
                experiment.experiment_id if experiment else None,
                experiment.arm if experiment else None,
                rule_ids,
            )
        )
        if len(queue) == 1 or len(queue) >= self._batch_size:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Start sending in the background (the lifespan's; `close` ends it)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self.run())

    async def run(self) -> None:
        """Send batches until `close`."""
        while not self._closing:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._queue) < self._batch_size:
                await self._fill()
            await self.send(self._take())

    async def _fill(self) -> None:
        """Until the batch is full, `served_batch_seconds` passed or the recorder closes."""
        try:
            async with asyncio.timeout(self._batch_seconds):
                while len(self._queue) < self._batch_size and not self._closing:
                    self._wake.clear()
                    await self._wake.wait()
        except TimeoutError:
            pass

    def _take(self) -> list[Entry]:
        queue = self._queue
        return [queue.popleft() for _ in range(min(len(queue), self._batch_size))]

    async def send(self, entries: Iterable[Entry]) -> None:
        """Publish `entries` as `ServedList` messages, one record batch per partition; what
        the broker does not take is dropped and counted, never raised. Gives the event loop
        back every `YIELD_EVERY` answers built and before handing them over: the requests
        being served wait for a slice of a batch, never a whole one."""
        entries = list(entries)
        if not entries:
            return
        if time.monotonic() < self._down_until:
            DROPPED.labels("broker").inc(len(entries))
            return
        counts: dict[str, int] = {}
        invalid = 0
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                producer = await self._connected()
                partitions = sorted(await producer.partitions_for(self._topic))
                keyed = []
                for start in range(0, len(entries), YIELD_EVERY):
                    for entry in entries[start : start + YIELD_EVERY]:
                        message = _message(entry)
                        if message is None:
                            invalid += 1
                            continue
                        endpoint, key, body = message
                        keyed.append(Keyed(partition_of(key, partitions), key, body))
                        counts[endpoint] = counts.get(endpoint, 0) + 1
                    await asyncio.sleep(0)  # the requests waiting go first
                await asyncio.gather(*await send_batched(producer, self._topic, keyed))
        except (KafkaError, TimeoutError, OSError) as exc:
            self._down_until = time.monotonic() + RECONNECT_SECONDS
            DROPPED.labels("broker").inc(len(entries) - invalid)
            log.warning("served_not_recorded", answers=len(entries) - invalid, error=repr(exc))
            return
        for endpoint, count in counts.items():
            RECORDED.labels(endpoint).inc(count)

    async def _connected(self) -> AIOKafkaProducer:
        """The producer, started on first use; a failed start is undone, so a later batch
        tries again."""
        if self._producer is None:
            producer = make_producer(self._settings)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def close(self) -> None:
        """At shutdown: let the batch being sent finish, then send what is still queued
        (each send bounded by `SEND_TIMEOUT_SECONDS`), then stop the producer."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # then wait_for cancelled it
                await asyncio.wait_for(self._task, SEND_TIMEOUT_SECONDS + 1)
            self._task = None
        while self._queue:
            await self.send(self._take())
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _message(entry: Entry) -> tuple[str, bytes | None, bytes] | None:
    """(endpoint, key, JSON) of an entry; None (counted, logged) when it is not a valid
    `ServedList`."""
    try:
        served = served_list(entry)
    except ValidationError as exc:
        DROPPED.labels("invalid").inc()
        log.warning("served_invalid", endpoint=entry[1], error=str(exc))
        return None
    key = served.customer_id or served.region or served.product_id
    return served.endpoint, key.encode() if key else None, served.model_dump_json().encode()


def served_list(entry: Entry) -> ServedList:
    """The message of one queued answer (a fresh `served_id`: 128 random bits, in hex)."""
    (at, endpoint, customer, region, product, products, source, version, experiment, arm, rules) = (
        entry
    )
    return ServedList.model_validate(
        {
            "served_id": os.urandom(16).hex(),
            "served_at": at,
            "endpoint": endpoint,
            "customer_id": customer,
            "region": region,
            "product_id": product,
            "product_ids": products,
            "source": source,
            "model_version": version,
            "experiment_id": experiment,
            "arm": arm,
            "rule_ids": rules,
        }
    )
