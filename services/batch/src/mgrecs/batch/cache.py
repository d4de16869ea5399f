"""The cache rows of one generation: each generation has its own partition of each rows table
(migration 0007), a shard's slice is bulk-copied into them, and dropping an old generation
drops its partitions. The legacy table names are views of the current generation."""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from mgrecs.batch.metrics import ROWS_WRITTEN
from mgrecs.common.cache_tables import SIMILAR, TABLES, USERS, Table
from mgrecs.engine.model import Scored

CacheLists = Mapping[str, Sequence[Scored]]


def cache_json(scored: Sequence[Scored]) -> str:
    """The cache's JSON shape `[{product_id, score, reason}]`, best first as given."""
    return json.dumps(
        [{"product_id": s.item_id, "score": round(s.score, 6), "reason": s.reason} for s in scored]
    )


async def create_partitions(conn: asyncpg.Connection, generation: int) -> None:
    """Empty partitions for a new generation. Built apart and then attached: ATTACH takes a
    lock that readers of the other generations do not wait for."""
    for table in TABLES:
        name = table.partition(generation)
        await conn.execute(f"CREATE TABLE {name} (LIKE {table.rows} INCLUDING ALL)")
        await conn.execute(
            f"ALTER TABLE {table.rows} ATTACH PARTITION {name} FOR VALUES IN ({int(generation)})"
        )


async def drop_partitions(conn: asyncpg.Connection, generation: int) -> None:
    for table in TABLES:
        await conn.execute(f"DROP TABLE IF EXISTS {table.partition(generation)}")


async def _copy(
    conn: asyncpg.Connection,
    table: Table,
    generation: int,
    lists: CacheLists,
    updated_at: datetime,
) -> None:
    """COPY into a text staging table (asyncpg has no binary JSONB encoder), then one INSERT
    into the generation's partition."""
    staging = f"staging_{table.view}"
    await conn.execute(
        f"CREATE TEMP TABLE {staging} (key TEXT PRIMARY KEY, payload TEXT) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(
        staging,
        records=[(key, cache_json(scored)) for key, scored in lists.items()],
        columns=["key", "payload"],
    )
    await conn.execute(
        f"""
        INSERT INTO {table.partition(generation)} (generation, {table.key}, {table.payload},
                                                   updated_at)
        SELECT $1, key, payload::jsonb, $2 FROM {staging}
        """,
        generation,
        updated_at,
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
