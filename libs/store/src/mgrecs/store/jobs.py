"""Jobs: `processed_ticks` (which ticks ran, when, their steps and outcome: makes ticks
idempotent and shows a running job's progress) and the retrain lock that lets one retrain
(or refresh) run at a time across every batch instance."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from mgrecs.common.schemas import ScheduleTick

RETRAIN_LOCK = "mgrecs:retrain"
"""Hashed into the advisory lock key; locks are per database, so tenants stay apart."""

APPEND_STEP = "UPDATE processed_ticks SET steps = steps || $2::jsonb WHERE tick_id = $1"

RECENT = """
SELECT tick_id, kind, started_at, finished_at, detail, steps
FROM processed_ticks
ORDER BY started_at DESC
LIMIT $1
"""


class AnotherRetrainRunning(Exception):
    """The lock is held by another session: a retrain or refresh is in progress."""


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


async def append_step(pool: asyncpg.Pool, tick_id: str, step: dict[str, Any]) -> None:
    """Add one finished step (name, seconds, status) to the tick's row."""
    await pool.execute(APPEND_STEP, tick_id, [step])


async def finish(pool: asyncpg.Pool, tick_id: str, detail: dict[str, Any]) -> None:
    await pool.execute(
        "UPDATE processed_ticks SET finished_at = now(), detail = $2 WHERE tick_id = $1",
        tick_id,
        detail,
    )


async def outcome(pool: asyncpg.Pool, tick_id: str) -> dict[str, Any] | None:
    """The finished tick's detail (its outcome); None while it has not finished."""
    detail: dict[str, Any] | None = await pool.fetchval(
        "SELECT detail FROM processed_ticks WHERE tick_id = $1 AND finished_at IS NOT NULL",
        tick_id,
    )
    return detail


async def recent(pool: asyncpg.Pool, limit: int = 20) -> list[asyncpg.Record]:
    """The newest jobs, newest first: id, kind, start, end, outcome and steps."""
    return list(await pool.fetch(RECENT, limit))


@asynccontextmanager
async def retrain_lock(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Hold the retrain lock for the block, or raise AnotherRetrainRunning at once (tried,
    not waited for: a second attempt is recorded as skipped instead of queueing behind the
    first, which would only train the same data again). The lock belongs to the
    connection's session, so a worker that dies releases it with its connection."""
    async with pool.acquire() as conn:
        locked = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", RETRAIN_LOCK)
        if not locked:
            raise AnotherRetrainRunning("another retrain is running")
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", RETRAIN_LOCK)
