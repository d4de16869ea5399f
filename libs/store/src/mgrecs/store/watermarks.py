"""The connector's durable watermark (`ingest_watermarks`): the last (updated_at, order id)
synced, per source."""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

LOAD = "SELECT updated_at, order_id FROM ingest_watermarks WHERE source = $1"

SAVE = """
INSERT INTO ingest_watermarks (source, updated_at, order_id) VALUES ($1, $2, $3)
ON CONFLICT (source) DO UPDATE
SET updated_at = EXCLUDED.updated_at, order_id = EXCLUDED.order_id, synced_at = now()
WHERE (ingest_watermarks.updated_at, ingest_watermarks.order_id)
    < (EXCLUDED.updated_at, EXCLUDED.order_id)
"""
"""Moves forward only: a stale writer cannot undo progress."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a record sits in the API's (updated_at, order id) order: the watermark."""

    updated_at: datetime
    order_id: str


async def load_watermark(pool: asyncpg.Pool, source: str) -> Position | None:
    """The position `source` was synced up to; None before its first sync."""
    row = await pool.fetchrow(LOAD, source)
    return None if row is None else Position(row["updated_at"], row["order_id"])


async def save_watermark(pool: asyncpg.Pool, source: str, position: Position) -> None:
    """Move the watermark forward; never back (a stale writer cannot undo progress)."""
    await pool.execute(SAVE, source, position.updated_at, position.order_id)
