"""CSV backfill: stream a flat order-lines file onto topic `orders`, in constant memory.

Rows of one order are consecutive and share an order id; each group becomes one `OrderEvent`.
An order any of whose rows is broken is not published at all (a partial order would put the
wrong items at the wrong line numbers): its rows go to `orders.dlq` with the reason.
Every row, published or not, also feeds the run's data-quality report, stored at the end.
"""

import asyncio
import csv
import io
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby, islice
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from mgrecs.common import topics
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import make_producer, send_dead_letter
from mgrecs.common.quality import QualityAccumulator, QualityReport
from mgrecs.common.quality_store import save_report
from mgrecs.common.sample_data import CSV_HEADER, CUSTOMER_COLUMNS
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.ingest.identity import Resolver, open_resolver, unify
from mgrecs.ingest.metrics import BACKFILL_LINES_REJECTED, ORDERS_ACCEPTED

CHUNK_ORDERS = 1000
"""Orders read and sent as one chunk."""
IN_FLIGHT_CHUNKS = 2
"""Chunks sent and not yet acked (plus one being read): bounds memory, keeps the pipe full."""
MAX_EXAMPLE_ERRORS = 10
CONTACT_COLUMNS = ("email", "phone")
"""Optional columns, read only to merge customers (README, Customer identities)."""


@dataclass
class BackfillSummary:
    """What a backfill did, for the operator (the CLI prints it)."""

    lines_read: int = 0
    orders_published: int = 0
    orders_rejected: int = 0
    lines_rejected: int = 0
    errors: list[str] = field(default_factory=list)
    """The first few rejection reasons, for the operator."""
    quality: QualityReport | None = None
    quality_report_id: int | None = None
    """The stored data-quality report of the run (`mgrecs quality` shows it)."""


@dataclass
class _Row:
    number: int
    """Line number in the file (the header is line 1)."""
    values: dict[str, str]


def _rows(handle: TextIO) -> Iterator[_Row]:
    reader = csv.DictReader(handle, restval="")
    missing = [name for name in CSV_HEADER if name not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"CSV header lacks column(s): {', '.join(missing)}")
    for row in reader:
        values = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        if None in row:
            values["__extra__"] = "yes"  # more fields than the header: the row is garbled
        yield _Row(reader.line_num, values)


def _optional(value: str) -> str | None:
    return value or None


def _order_from_rows(rows: list[_Row]) -> OrderEvent:
    """Build and validate one order; ValueError says what is wrong, with line numbers."""
    first = rows[0].values
    for row in rows:
        if "__extra__" in row.values:
            raise ValueError(f"line {row.number}: more fields than the header has")
        if row.values["customer_id"] != first["customer_id"]:
            raise ValueError(f"line {row.number}: customer_id differs from the order's first row")
    document: dict[str, Any] = {
        "order_id": first["order_id"],
        "ordered_at": first["ordered_at"],
        "customer": {
            "customer_id": first["customer_id"],
            "region": _optional(first["region"]),
            **{name: _optional(first.get(name, "")) for name in CUSTOMER_COLUMNS},
            **{name: _optional(first.get(name, "")) for name in CONTACT_COLUMNS},
        },
        "lines": [
            {
                "product_id": row.values["product_id"],
                "product_name": _optional(row.values["product_name"]),
                "category": _optional(row.values["category"]),
                "price": row.values["price"],
                "quantity": row.values["quantity"],
            }
            for row in rows
        ],
    }
    try:
        return OrderEvent.model_validate(document)
    except ValidationError as exc:
        raise ValueError("; ".join(_describe(error, rows) for error in exc.errors())) from exc


def _describe(error: Any, rows: list[_Row]) -> str:
    """'line 7: quantity: Input should be greater than 0' rather than 'lines.3.quantity'."""
    loc = list(error["loc"])
    where = f"line {rows[0].number}"
    if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and loc[1] < len(rows):
        where = f"line {rows[loc[1]].number}"
        loc = loc[2:]
    elif loc and loc[0] == "customer":
        loc = loc[1:]
    return f"{where}: {'.'.join(str(part) for part in loc) or 'order'}: {error['msg']}"


def _payload(rows: list[_Row]) -> str:
    """The rejected rows as CSV (with the header), ready to fix and backfill again."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=[*CSV_HEADER, *CUSTOMER_COLUMNS, *CONTACT_COLUMNS], extrasaction="ignore"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow(row.values)
    return out.getvalue()


def _order_groups(handle: TextIO) -> Iterator[list[_Row]]:
    """Consecutive rows sharing an order id; a row without one stands alone."""
    for _, group in groupby(_rows(handle), key=lambda r: r.values["order_id"] or f"#{r.number}"):
        yield list(group)


def _take(groups: Iterator[list[_Row]], count: int) -> list[list[_Row]]:
    return list(islice(groups, count))


async def backfill_file(
    path: Path,
    settings: Settings,
    on_progress: Callable[[int], None] | None = None,
) -> BackfillSummary:
    """Publish every order of the CSV at `path`; reject broken ones to the dead-letter topic.

    The file is read in chunks in a worker thread, the next chunk while this one is sent, and
    a chunk's acks are awaited once the following chunk is sent: at most IN_FLIGHT_CHUNKS are
    held at once (memory stays constant), the broker's round trips overlap the reading and
    validating, and the event loop is never blocked on disk.
    """
    summary = BackfillSummary()
    accumulator = QualityAccumulator()
    handle = await asyncio.to_thread(Path(path).open, newline="", encoding="utf-8")
    try:
        groups = _order_groups(handle)
        chunk = await asyncio.to_thread(_take, groups, CHUNK_ORDERS)  # checks the header first
        producer = make_producer(settings)
        await producer.start()
        try:
            async with open_resolver(settings) as resolver:
                in_flight: deque[tuple[int, asyncio.Future[Any]]] = deque()
                while chunk:
                    following = asyncio.ensure_future(
                        asyncio.to_thread(_take, groups, CHUNK_ORDERS)
                    )
                    acks = await _publish_chunk(
                        producer, settings, Path(path).name, chunk, summary, resolver, accumulator
                    )
                    in_flight.append((summary.lines_read, acks))
                    if len(in_flight) >= IN_FLIGHT_CHUNKS:
                        await _acked(in_flight.popleft(), summary, on_progress)
                    chunk = await following
                while in_flight:
                    await _acked(in_flight.popleft(), summary, on_progress)
        finally:
            await producer.stop()
    finally:
        handle.close()
    summary.quality = accumulator.report(
        f"backfill:{Path(path).name}", "backfill", settings.max_bad_record_rate
    )
    summary.quality_report_id = await _store(settings, summary.quality)
    return summary


async def _acked(
    sent: tuple[int, "asyncio.Future[Any]"],
    summary: BackfillSummary,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Wait for one chunk's acks; count its orders as published and report progress."""
    lines_read, acks = sent
    published = len(await acks)
    summary.orders_published += published
    ORDERS_ACCEPTED.labels("backfill").inc(published)
    if on_progress:
        on_progress(lines_read)


async def _store(settings: Settings, report: QualityReport) -> int:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        return await save_report(pool, report)
    finally:
        await pool.close()


def _number(text: str) -> float:
    """A quantity or price as written, NaN when unreadable (validation says why)."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _observe(accumulator: QualityAccumulator, rows: list[_Row], invalid: str | None) -> None:
    for row in rows:
        values = row.values
        accumulator.add(
            values.get("order_id", ""),
            values.get("customer_id"),
            values.get("product_id"),
            _number(values.get("quantity", "")),
            _number(values.get("price", "")),
            invalid,
        )


async def _publish_chunk(
    producer: AIOKafkaProducer,
    settings: Settings,
    source: str,
    chunk: list[list[_Row]],
    summary: BackfillSummary,
    resolver: Resolver | None,
    accumulator: QualityAccumulator,
) -> "asyncio.Future[Any]":
    """Send one chunk's orders (its broken ones to the dead-letter topic); returns the
    future of the broker's acks, a list with one entry per published order."""
    orders_topic = topics.topic(topics.ORDERS, settings)
    dlq_topic = topics.topic(topics.ORDERS_DLQ, settings)
    acks = []
    for rows in chunk:
        summary.lines_read += len(rows)
        try:
            order = _order_from_rows(rows)
            if resolver is not None:
                order = await unify(order, resolver)
        except ValueError as exc:
            _observe(accumulator, rows, str(exc))
            await _reject(producer, dlq_topic, source, rows, str(exc), summary)
            continue
        _observe(accumulator, rows, None)
        value = order.model_dump_json().encode()
        acks.append(await producer.send(orders_topic, value=value, key=order.key))
    return asyncio.gather(*acks)


async def _reject(
    producer: AIOKafkaProducer,
    dlq_topic: str,
    source: str,
    rows: list[_Row],
    reason: str,
    summary: BackfillSummary,
) -> None:
    letter = DeadLetter(
        source_topic=f"backfill:{source}",
        partition=-1,
        offset=rows[0].number,
        key=rows[0].values.get("customer_id") or None,
        reason=reason,
        payload=_payload(rows),
    )
    await send_dead_letter(producer, dlq_topic, letter)
    summary.orders_rejected += 1
    summary.lines_rejected += len(rows)
    BACKFILL_LINES_REJECTED.inc(len(rows))
    if len(summary.errors) < MAX_EXAMPLE_ERRORS:
        summary.errors.append(reason)
