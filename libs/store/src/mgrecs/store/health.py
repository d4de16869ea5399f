"""Whether the database answers: the one statement a readiness probe runs."""

import asyncpg


async def ping(db: asyncpg.Pool | asyncpg.Connection) -> None:
    """Raise unless the database answers a trivial query."""
    await db.fetchval("SELECT 1")
