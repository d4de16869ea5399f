"""The connector's durable watermark: the last (updated_at, order id) synced, per source."""

import asyncpg

from mgrecs.ingest.mapping import Position


async def load_watermark(pool: asyncpg.Pool, source: str) -> Position | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT updated_at, order_id FROM ingest_watermarks WHERE source = $1", source
        )
    return None if row is None else Position(row["updated_at"], row["order_id"])


async def save_watermark(pool: asyncpg.Pool, source: str, position: Position) -> None:
    """Move the watermark forward; never back (a stale writer cannot undo progress)."""
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO ingest_watermarks (source, updated_at, order_id) VALUES ($1, $2, $3)
            ON CONFLICT (source) DO UPDATE
            SET updated_at = EXCLUDED.updated_at, order_id = EXCLUDED.order_id, synced_at = now()
            WHERE (ingest_watermarks.updated_at, ingest_watermarks.order_id)
                < (EXCLUDED.updated_at, EXCLUDED.order_id)
            """,
            source,
            position.updated_at,
            position.order_id,
        )
