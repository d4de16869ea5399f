"""The cache rows of one generation: each generation has its own partition of each rows table
(migration 0007), a shard's slice is bulk-copied into them, and removing an old generation
detaches its partitions concurrently, then drops them. The legacy table names are views of
the current generation."""

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime

import asyncpg
import orjson

from mgrecs.batch.metrics import ROWS_WRITTEN
from mgrecs.common.cache_tables import (
    PARTITIONED,
    SIMILAR,
    USERS,
    Table,
    partition,
)
from mgrecs.engine.records import Scored

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


async def create_partitions(conn: asyncpg.Connection, generation: int) -> None:
    """Empty partitions for a new generation. Built apart and then attached: ATTACH takes a
    lock that readers of the other generations do not wait for."""
    for view in PARTITIONED:
        name = partition(view, generation)
        await conn.execute(f"CREATE TABLE {name} (LIKE {view}_rows INCLUDING ALL)")
        await conn.execute(
            f"ALTER TABLE {view}_rows ATTACH PARTITION {name} FOR VALUES IN ({int(generation)})"
        )


DETACH_STATE = """
SELECT i.inhdetachpending FROM pg_inherits i
WHERE i.inhrelid = to_regclass($1) AND i.inhparent = to_regclass($2)
"""
"""Whether the partition $1 is attached to $2: false; pending detach: true; no row: neither."""


async def remove_partitions(conn: asyncpg.Connection, generation: int) -> None:
    """Detach the generation's partitions CONCURRENTLY, then drop them: the parent tables
    only ever take SHARE UPDATE EXCLUSIVE locks, so cache reads never wait (a plain DROP of
    a partition locks its parent ACCESS EXCLUSIVE, queueing every reader behind it).

    Outside any transaction (CONCURRENTLY cannot run in one). A detach waits for the
    transactions that read the parent before it, within the connection's lock_timeout; one
    interrupted there stays pending and is finalized by the next call."""
    for view in PARTITIONED:
        name, parent = partition(view, generation), f"{view}_rows"
        pending = await conn.fetchval(DETACH_STATE, name, parent)
        if pending is not None:
            mode = "FINALIZE" if pending else "CONCURRENTLY"
            await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {name} {mode}")
        await conn.execute(f"DROP TABLE IF EXISTS {name}")


async def _copy(
    conn: asyncpg.Connection,
    table: Table,
    generation: int,
    lists: CacheLists,
    updated_at: datetime,
) -> None:
    """COPY straight into the generation's partition, as CSV (asyncpg has no binary JSONB
    encoder; PostgreSQL parses the JSON text as it copies)."""
    await conn.copy_to_table(
        table.partition(generation),
        source=_csv_chunks(generation, lists, updated_at),
        columns=["generation", table.key, table.payload, "updated_at"],
        format="csv",
    )
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
