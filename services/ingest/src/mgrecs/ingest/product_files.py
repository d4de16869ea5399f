"""The products backfill: a catalogue file (CSV or JSON lines) onto topic `products`, in
constant memory.

- CSV with a header: `product_id` and any of `name`, `category`, `price`, `cost`, `margin`,
  `in_stock`, `active` (true/false, yes/no, 1/0), `launched_at`, `updated_at` (ISO-8601 with
  a time zone) and `attributes` (a JSON object); every other column is a free attribute
  (`brand`, `size`...: its text, when not empty).
- JSON lines (`.jsonl`, `.ndjson`, `.json`): one `ProductEvent` object per line.

A line that is not a valid record goes to `products.dlq` with the reason (its file line
named), the rest are published keyed by product id. A record without `updated_at` gets the
time the backfill started, the same for every line of the file.
"""

import asyncio
import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.kafka import Keyed, make_producer, partition_of, send_batched
from mgrecs.common.schemas import DeadLetter
from mgrecs.common.settings import Settings
from mgrecs.ingest.metrics import PRODUCTS_ACCEPTED
from mgrecs.ingest.order_files import FileFormat, detect_format

CHUNK_LINES = 5000
MAX_EXAMPLE_ERRORS = 10
FIELDS = frozenset(ProductEvent.model_fields) - {"schema_version"}
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass
class ProductBackfillSummary:
    """What a products backfill did, for the operator (the CLI prints it)."""

    lines_read: int = 0
    published: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Line:
    number: int
    payload: str
    document: dict[str, Any] | None = None
    error: str | None = None


def _csv_lines(handle: TextIO) -> Iterator[_Line]:
    reader = csv.DictReader(handle, restkey="__extra__")
    if reader.fieldnames is None or "product_id" not in reader.fieldnames:
        raise ValueError(f"not a catalogue CSV: the header {reader.fieldnames} has no product_id")
    for row in reader:
        number = reader.line_num
        payload = json.dumps(row, ensure_ascii=False)
        if row.get("__extra__"):
            yield _Line(number, payload, error="more fields than the header")
            continue
        try:
            yield _Line(number, payload, _from_row(row))
        except ValueError as exc:
            yield _Line(number, payload, error=str(exc))


def _from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as a `ProductEvent` document: empty cells are absent, other columns are
    attributes."""
    document: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or value == "":
            continue
        if name == "attributes":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"attributes: not JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise ValueError("attributes: not a JSON object")
            attributes = {**parsed, **attributes}
        elif name in ("in_stock", "active"):
            flag = BOOLEANS.get(value.strip().lower())
            if flag is None:
                raise ValueError(f"{name}: {value!r} is not true/false, yes/no or 1/0")
            document[name] = flag
        elif name in FIELDS:
            document[name] = value
        else:
            attributes[name] = value
    if attributes:
        document["attributes"] = attributes
    return document


def _json_lines(handle: TextIO) -> Iterator[_Line]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            yield _Line(number, text.rstrip("\n"), error=f"not JSON: {exc}")
            continue
        if not isinstance(document, dict):
            yield _Line(number, text.rstrip("\n"), error="not a JSON object")
            continue
        yield _Line(number, text.rstrip("\n"), document)


def read_products(handle: TextIO, file_format: FileFormat) -> Iterator[_Line]:
    """The file's records, one per line, each parsed or with the reason it cannot be."""
    return _csv_lines(handle) if file_format == "csv" else _json_lines(handle)


@dataclass
class _Chunk:
    lines: int = 0
    ready: list[Keyed] = field(default_factory=list)
    rejected: list[tuple[_Line, str]] = field(default_factory=list)


def _prepare(lines: Iterator[_Line], partitions: list[int], stamp: datetime) -> _Chunk:
    chunk = _Chunk()
    for line in islice(lines, CHUNK_LINES):
        chunk.lines += 1
        if line.error is not None or line.document is None:
            chunk.rejected.append((line, f"line {line.number}: {line.error}"))
            continue
        try:
            product = ProductEvent.model_validate({"updated_at": stamp, **line.document})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}"
                for error in exc.errors(include_url=False)[:5]
            )
            chunk.rejected.append((line, f"line {line.number}: {problems}"))
            continue
        key = product.key
        chunk.ready.append(
            Keyed(partition_of(key, partitions), key, product.model_dump_json().encode())
        )
    return chunk


async def backfill_products(
    path: Path,
    settings: Settings,
    on_progress: Callable[[int], None] | None = None,
    file_format: FileFormat | None = None,
) -> ProductBackfillSummary:
    """Publish every valid record of the catalogue file at `path` to `products`; the others
    go to `products.dlq` with the reason. The next chunk is read while this one is sent."""
    path = Path(path)
    summary = ProductBackfillSummary()
    stamp = datetime.now(UTC)
    handle = await asyncio.to_thread(path.open, newline="", encoding="utf-8")
    try:
        lines = read_products(handle, file_format or detect_format(path.name))
        producer = make_producer(settings)
        await producer.start()
        try:
            topic = topics.topic(topics.PRODUCTS, settings)
            partitions = sorted(await producer.partitions_for(topic))
            chunk = await asyncio.to_thread(_prepare, lines, partitions, stamp)
            pending: asyncio.Future[Any] | None = None
            while chunk.lines:
                following = asyncio.ensure_future(
                    asyncio.to_thread(_prepare, lines, partitions, stamp)
                )
                acks = await _send(producer, settings, path.name, chunk, summary)
                if pending is not None:
                    await pending
                    if on_progress:
                        on_progress(summary.lines_read)
                pending = acks
                chunk = await following
            if pending is not None:
                await pending
            if on_progress:
                on_progress(summary.lines_read)
        finally:
            await producer.stop()
    finally:
        handle.close()
    return summary


async def _send(
    producer: AIOKafkaProducer,
    settings: Settings,
    source: str,
    chunk: _Chunk,
    summary: ProductBackfillSummary,
) -> "asyncio.Future[Any]":
    """Send a chunk (one record batch per partition, rejects to `products.dlq`); the future
    of all its acks, counted when it resolves."""
    acks = list(await send_batched(producer, topics.topic(topics.PRODUCTS, settings), chunk.ready))
    dlq = topics.topic(topics.PRODUCTS_DLQ, settings)
    for line, reason in chunk.rejected:
        key = (line.document or {}).get("product_id")
        letter = DeadLetter(
            source_topic=f"backfill:{source}",
            partition=-1,
            offset=line.number,
            key=str(key) if key is not None else None,
            reason=reason,
            payload=line.payload,
        )
        acks.append(
            await producer.send(
                dlq,
                value=letter.model_dump_json().encode(),
                key=letter.key.encode() if letter.key else None,
            )
        )
        if len(summary.errors) < MAX_EXAMPLE_ERRORS:
            summary.errors.append(reason)
    published, rejected, lines = len(chunk.ready), len(chunk.rejected), chunk.lines

    async def counted() -> None:
        await asyncio.gather(*acks)
        summary.lines_read += lines
        summary.published += published
        summary.rejected += rejected
        PRODUCTS_ACCEPTED.labels("backfill").inc(published)

    return asyncio.ensure_future(counted())
