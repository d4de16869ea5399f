"""Whether the database answers: the one statement a readiness probe runs."""

import asyncpg

from mgrecs.common.probes import CHECK_TIMEOUT_SECONDS, Check


async def ping(db: asyncpg.Pool | asyncpg.Connection) -> None:
    """Raise unless the database answers a trivial query."""
    await db.fetchval("SELECT 1")


def database_check(database_url: str) -> Check:
    """Ok when a new connection to the database answers (independent of the worker's pool,
    which may not exist yet while the worker waits for the database)."""

    async def check() -> str:
        connection = await asyncpg.connect(database_url, timeout=CHECK_TIMEOUT_SECONDS)
        try:
            await ping(connection)
        finally:
            await connection.close()
        return "ok"

    return check
