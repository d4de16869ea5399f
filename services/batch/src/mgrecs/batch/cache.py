"""A shard's cached lists as the cache stores them: JSON `[{product_id, score, reason}]` per
key, bulk-copied as CSV into the generation's partitions
(`mgrecs.store.cache_generations.copy_rows`)."""

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime

import asyncpg
import orjson

from mgrecs.batch.metrics import ROWS_WRITTEN
from mgrecs.engine.records import Scored
from mgrecs.store.cache import SIMILAR, USERS, Table
from mgrecs.store.cache_generations import copy_rows

CacheLists = Mapping[str, Sequence[Scored]]
COPY_CHUNK = 10_000
"""Rows per piece of a COPY stream."""


def cache_json(scored: Sequence[Scored]) -> str:
    """The cache's JSON shape `[{product_id, score, reason}]`, best first as given (orjson:
    json.dumps was half the time of writing a shard)."""
    return orjson.dumps(
        [{"product_id": s.item_id, "score": round(s.score, 6), "reason": s.reason} for s in scored]
    ).decode()


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


async def _csv_chunks(
    generation: int, lists: CacheLists, updated_at: datetime
) -> AsyncIterator[bytes]:
    """The rows as CSV for COPY, COPY_CHUNK rows at a time (never the whole slice at once)."""
    stamp = updated_at.isoformat(sep=" ")
    lines: list[str] = []
    for key, scored in lists.items():
        lines.append(
            f"{int(generation)},{_csv_field(key)},{_csv_field(cache_json(scored))},{stamp}\n"
        )
        if len(lines) == COPY_CHUNK:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


async def _copy(
    conn: asyncpg.Connection,
    table: Table,
    generation: int,
    lists: CacheLists,
    updated_at: datetime,
) -> None:
    await copy_rows(conn, table, generation, _csv_chunks(generation, lists, updated_at))
    ROWS_WRITTEN.labels(table.view).inc(len(lists))


async def write_slice(
    conn: asyncpg.Connection,
    generation: int,
    users: CacheLists,
    similar: CacheLists,
    updated_at: datetime,
) -> None:
    """Add one shard's rows to the generation (inside the caller's transaction, which also
    marks the shard done: a shard is written whole or not at all)."""
    await _copy(conn, USERS, generation, users, updated_at)
    await _copy(conn, SIMILAR, generation, similar, updated_at)
