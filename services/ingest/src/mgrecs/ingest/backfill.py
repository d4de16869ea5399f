"""Backfill: stream an order file (CSV or JSON lines) onto topic `orders`, in constant memory.

An order any of whose lines is broken is not published at all (a partial order would put the
wrong items at the wrong line numbers): it goes to `orders.dlq` with the reason. Every line,
published or not, also feeds the run's data-quality report, stored at the end.

Speed: a worker thread reads, validates, serializes and partitions the next chunk of orders
while the event loop sends this one as one record batch per partition (the same partition a
keyed `send` would choose, so a customer's orders stay in order whichever way they came),
with the plain aiokafka producer of `publisher` (why not FastStream: its docstring).
"""

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from mgrecs.common import topics
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import Keyed, make_producer, partition_of, send_batched
from mgrecs.common.quality import QualityReport
from mgrecs.common.quality_checks import QualityAccumulator
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.identity import Resolver, event_keys, open_resolver, with_unified_id
from mgrecs.ingest.identity_rules import IdentityRules
from mgrecs.ingest.memory import return_big_blocks_on_free
from mgrecs.ingest.metrics import BACKFILL_LINES_REJECTED, ORDERS_ACCEPTED
from mgrecs.ingest.order_files import FileFormat, FileOrder, detect_format, read_orders
from mgrecs.ingest.publisher import order_bytes
from mgrecs.store.identities import CustomerKeys
from mgrecs.store.reports import save_report

CHUNK_ORDERS = 2000
"""Orders read and sent as one chunk."""
IN_FLIGHT_CHUNKS = 2
"""Chunks sent and not yet acked (plus one being read): bounds memory, keeps the pipe full."""
MAX_EXAMPLE_ERRORS = 10


@dataclass
class BackfillSummary:
    """What a backfill did, for the operator (the CLI prints it)."""

    lines_read: int = 0
    """File lines (a JSON `OrderEvent` line is one, whatever its order lines)."""
    order_lines: int = 0
    """Order lines published."""
    orders_published: int = 0
    orders_rejected: int = 0
    lines_rejected: int = 0
    errors: list[str] = field(default_factory=list)
    """The first few rejection reasons, for the operator."""
    quality: QualityReport | None = None
    quality_report_id: int | None = None
    """The stored data-quality report of the run (`mgrecs quality` shows it)."""


@dataclass
class _Chunk:
    """One chunk, prepared off the event loop."""

    file_lines: int = 0
    order_lines: int = 0
    """Order lines in `ready`."""
    ready: list[Keyed] = field(default_factory=list)
    to_resolve: list[tuple[FileOrder, OrderEvent, CustomerKeys]] = field(default_factory=list)
    """Orders whose customer is merged through the database (resolved on the loop, and only
    while no chunk is being prepared: the accumulator is not shared across threads)."""
    rejected: list[tuple[FileOrder, str]] = field(default_factory=list)


class _Preparer:
    """Reads, validates, standardizes, serializes and partitions orders, a chunk per call;
    runs in a worker thread, one call at a time (so the accumulator needs no lock)."""

    def __init__(
        self,
        orders: Iterator[FileOrder],
        partitions: list[int],
        rules: IdentityRules | None,
        accumulator: QualityAccumulator,
    ) -> None:
        self._orders = orders
        self._partitions = partitions
        self._rules = rules
        self._accumulator = accumulator

    def publish(self, chunk: "_Chunk", order: OrderEvent) -> None:
        """Queue `order` in the chunk, ready to send."""
        key = order.key
        chunk.ready.append(Keyed(partition_of(key, self._partitions), key, order_bytes(order)))
        chunk.order_lines += len(order.lines)

    def __call__(self) -> _Chunk:
        chunk = _Chunk()
        for item in islice(self._orders, CHUNK_ORDERS):
            chunk.file_lines += item.span
            try:
                order = item.to_order()
                if self._rules is None:
                    self.publish(chunk, order)
                elif self._rules.merge_by:
                    chunk.to_resolve.append((item, order, event_keys(order, self._rules)))
                else:
                    keys = event_keys(order, self._rules)
                    self.publish(chunk, with_unified_id(order, keys.customer_id))
            except ValueError as exc:
                self.reject(chunk, item, str(exc))
                continue
            self._accumulator.add_event(order)
        return chunk

    def reject(self, chunk: _Chunk, item: FileOrder, reason: str) -> None:
        item.observe(self._accumulator, reason)
        chunk.rejected.append((item, reason))


async def backfill_file(
    path: Path,
    settings: Settings,
    on_progress: Callable[[int], None] | None = None,
    file_format: FileFormat | None = None,
) -> BackfillSummary:
    """Publish every order of the file at `path`; reject broken ones to the dead-letter topic.

    `file_format` defaults to the suffix's (JSON lines for .jsonl/.ndjson/.json, else CSV).
    At most IN_FLIGHT_CHUNKS chunks are sent and not yet acked while the next is prepared,
    so memory stays constant, the broker's round trips overlap the preparing, and the event
    loop is never blocked on disk. `on_progress` gets the file lines done so far.
    """
    return_big_blocks_on_free()
    path = Path(path)
    summary = BackfillSummary()
    accumulator = QualityAccumulator()
    handle = await asyncio.to_thread(path.open, newline="", encoding="utf-8")
    try:
        orders = read_orders(handle, file_format or detect_format(path.name))
        producer = make_producer(settings)
        await producer.start()
        try:
            async with open_resolver(settings) as resolver:
                topic = topics.topic(topics.ORDERS, settings)
                partitions = sorted(await producer.partitions_for(topic))
                prepare = _Preparer(
                    orders, partitions, resolver.rules if resolver else None, accumulator
                )
                sender = _Sender(producer, settings, path.name, summary)
                chunk = await asyncio.to_thread(prepare)  # checks a CSV header first
                in_flight: deque[tuple[int, asyncio.Future[Any]]] = deque()
                while chunk.file_lines:
                    if chunk.to_resolve and resolver is not None:
                        await _resolve(chunk, resolver, prepare)
                    following = asyncio.ensure_future(asyncio.to_thread(prepare))
                    acks = await sender.send(chunk)
                    in_flight.append((summary.lines_read, acks))
                    if len(in_flight) >= IN_FLIGHT_CHUNKS:
                        await _acked(in_flight.popleft(), on_progress)
                    chunk = await following
                while in_flight:
                    await _acked(in_flight.popleft(), on_progress)
        finally:
            await producer.stop()
    finally:
        handle.close()
    summary.quality = accumulator.report(
        f"backfill:{path.name}", "backfill", settings.max_bad_record_rate
    )
    summary.quality_report_id = await _store(settings, summary.quality)
    return summary


async def _resolve(chunk: _Chunk, resolver: Resolver, prepare: _Preparer) -> None:
    """Merge customers through the database mapping (docs/concepts.md, Customer identities)."""
    for item, order, keys in chunk.to_resolve:
        unified = await resolver.resolve(keys)
        try:
            prepare.publish(chunk, with_unified_id(order, unified))
        except ValueError as exc:
            prepare.reject(chunk, item, str(exc))


class _Sender:
    """Sends a chunk: one record batch per partition, rejects to the dead-letter topic."""

    def __init__(
        self, producer: AIOKafkaProducer, settings: Settings, source: str, summary: BackfillSummary
    ) -> None:
        self._producer = producer
        self._topic = topics.topic(topics.ORDERS, settings)
        self._dlq_topic = topics.topic(topics.ORDERS_DLQ, settings)
        self._source = source
        self._summary = summary

    async def send(self, chunk: _Chunk) -> "asyncio.Future[Any]":
        """Send the chunk; returns the future of all its acks (counted when it resolves)."""
        summary = self._summary
        summary.lines_read += chunk.file_lines
        acks = [
            *await send_batched(self._producer, self._topic, chunk.ready),
            *await self._reject(chunk.rejected),
        ]
        orders, lines = len(chunk.ready), chunk.order_lines

        async def counted() -> None:
            await asyncio.gather(*acks)
            summary.orders_published += orders
            summary.order_lines += lines
            ORDERS_ACCEPTED.labels("backfill").inc(orders)

        return asyncio.ensure_future(counted())

    async def _reject(self, rejected: list[tuple[FileOrder, str]]) -> list["asyncio.Future[Any]"]:
        acks = []
        summary = self._summary
        for item, reason in rejected:
            letter = DeadLetter(
                source_topic=f"backfill:{self._source}",
                partition=-1,
                offset=item.number,
                key=item.customer_id,
                reason=reason,
                payload=item.payload(),
            )
            acks.append(
                await self._producer.send(
                    self._dlq_topic,
                    value=letter.model_dump_json().encode(),
                    key=letter.key.encode() if letter.key else None,
                )
            )
            summary.orders_rejected += 1
            summary.lines_rejected += item.span
            BACKFILL_LINES_REJECTED.inc(item.span)
            if len(summary.errors) < MAX_EXAMPLE_ERRORS:
                summary.errors.append(reason)
        return acks


async def _acked(
    sent: tuple[int, "asyncio.Future[Any]"], on_progress: Callable[[int], None] | None
) -> None:
    """Wait for one chunk's acks, then report progress."""
    lines_read, acks = sent
    await acks
    if on_progress:
        on_progress(lines_read)


async def _store(settings: Settings, report: QualityReport) -> int:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        return await save_report(pool, report)
    finally:
        await pool.close()
