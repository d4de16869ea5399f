"""One retrain (or refresh) at a time across every batch instance: a PostgreSQL advisory
lock, tried and not waited for, so a second attempt is recorded as skipped instead of
queueing behind the first (it would only train the same data again)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

RETRAIN_LOCK = "mgrecs:retrain"
"""Hashed into the advisory lock key; locks are per database, so tenants stay apart."""


class AnotherRetrainRunning(Exception):
    """The lock is held by another session: a retrain or refresh is in progress."""


@asynccontextmanager
async def retrain_lock(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Hold the retrain lock for the block, or raise AnotherRetrainRunning at once. The lock
    belongs to the connection's session, so a worker that dies releases it with its
    connection."""
    async with pool.acquire() as conn:
        locked = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", RETRAIN_LOCK)
        if not locked:
            raise AnotherRetrainRunning("another retrain is running")
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", RETRAIN_LOCK)
