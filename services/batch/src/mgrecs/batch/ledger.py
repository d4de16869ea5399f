"""`processed_ticks`: which ticks ran, when, and with what outcome (makes ticks idempotent)."""

from typing import Any

import asyncpg

from mgrecs.common.schemas import ScheduleTick


async def is_finished(pool: asyncpg.Pool, tick_id: str) -> bool:
    finished = await pool.fetchval(
        "SELECT finished_at IS NOT NULL FROM processed_ticks WHERE tick_id = $1", tick_id
    )
    return bool(finished)


async def start(pool: asyncpg.Pool, tick: ScheduleTick) -> None:
    """Record that the tick's job starts (again, with no steps yet, if a previous attempt
    died midway)."""
    await pool.execute(
        """
        INSERT INTO processed_ticks (tick_id, kind, started_at, detail)
        VALUES ($1, $2, now(), '{}'::jsonb)
        ON CONFLICT (tick_id) DO UPDATE
        SET started_at = now(), kind = EXCLUDED.kind, steps = '[]'::jsonb
        """,
        tick.tick_id,
        tick.kind,
    )


async def finish(pool: asyncpg.Pool, tick_id: str, detail: dict[str, Any]) -> None:
    await pool.execute(
        "UPDATE processed_ticks SET finished_at = now(), detail = $2 WHERE tick_id = $1",
        tick_id,
        detail,
    )


async def recent(pool: asyncpg.Pool, limit: int = 20) -> list[asyncpg.Record]:
    """The newest jobs, newest first: id, kind, start, end, outcome and steps."""
    return list(
        await pool.fetch(
            "SELECT tick_id, kind, started_at, finished_at, detail, steps FROM processed_ticks"
            " ORDER BY started_at DESC LIMIT $1",
            limit,
        )
    )
