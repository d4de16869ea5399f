"""Replace both recommendation cache tables in one transaction (a generation swap).

Rows are bulk-copied into staging tables, upserted, and rows this run did not produce are
deleted, all before COMMIT: a reader sees the whole old cache or the whole new one.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from mgrecs.batch.metrics import ROWS_DELETED, ROWS_WRITTEN
from mgrecs.engine.model import Scored

CacheLists = Mapping[str, Sequence[Scored]]


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    payload: str


USERS = Table("offline_user_recommendations", "user_id", "recommendations")
SIMILAR = Table("offline_similar_items", "product_id", "similar_products")


@dataclass(frozen=True)
class Written:
    upserted: int
    deleted: int


def cache_json(scored: Sequence[Scored]) -> str:
    """The cache's JSON shape `[{product_id, score, reason}]`, best first as given."""
    return json.dumps(
        [{"product_id": s.item_id, "score": round(s.score, 6), "reason": s.reason} for s in scored]
    )


def _count(status: str) -> int:
    """Rows affected, from a command tag like `INSERT 0 12` or `DELETE 3`."""
    return int(status.rsplit(" ", 1)[-1])


async def _replace(
    conn: asyncpg.Connection, table: Table, lists: CacheLists, updated_at: datetime
) -> Written:
    staging = f"staging_{table.name}"
    await conn.execute(
        f"CREATE TEMP TABLE {staging} (key TEXT PRIMARY KEY, payload TEXT) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(
        staging,
        records=[(key, cache_json(scored)) for key, scored in lists.items()],
        columns=["key", "payload"],
    )
    upserted = await conn.execute(
        f"""
        INSERT INTO {table.name} ({table.key}, {table.payload}, updated_at)
        SELECT key, payload::jsonb, $1 FROM {staging}
        ON CONFLICT ({table.key}) DO UPDATE
        SET {table.payload} = EXCLUDED.{table.payload}, updated_at = EXCLUDED.updated_at
        """,
        updated_at,
    )
    deleted = await conn.execute(
        f"""
        DELETE FROM {table.name} t
        WHERE NOT EXISTS (SELECT 1 FROM {staging} s WHERE s.key = t.{table.key})
        """
    )
    written = Written(_count(upserted), _count(deleted))
    ROWS_WRITTEN.labels(table.name).inc(written.upserted)
    ROWS_DELETED.labels(table.name).inc(written.deleted)
    return written


async def replace_cache(
    pool: asyncpg.Pool, users: CacheLists, similar: CacheLists, updated_at: datetime
) -> tuple[Written, Written]:
    """Make the cache tables hold exactly `users` and `similar`, atomically."""
    async with pool.acquire() as conn, conn.transaction():
        # One writer at a time: two overlapping runs would otherwise interleave deletes.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('mgrecs:cache'))")
        return (
            await _replace(conn, USERS, users, updated_at),
            await _replace(conn, SIMILAR, similar, updated_at),
        )
