"""Session-level advisory locks: one replica of a role holds its lock and works, the others
wait as standbys. The lock belongs to the connection that took it, so PostgreSQL releases it
when that connection ends: a crash, a kill or a lost network frees it for a standby."""

import asyncpg

TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended($1, 0))"
HOLDER = """
SELECT l.pid FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)
"""
"""A one-key advisory lock shows its 64-bit key split into classid (high) and objid (low)."""


def connector_lock(source: str) -> str:
    """The name of the lock the connector of `source` pulls under (one puller per source)."""
    return f"mgrecs-connector:{source}"


async def try_lock(connection: asyncpg.Connection, name: str) -> bool:
    """Take lock `name` for this connection's session unless another session holds it."""
    return bool(await connection.fetchval(TRY_LOCK, name))


async def unlock(connection: asyncpg.Connection, name: str) -> bool:
    """Give lock `name` back; False when this session did not hold it."""
    return bool(await connection.fetchval(UNLOCK, name))


async def lock_holder(db: asyncpg.Pool | asyncpg.Connection, name: str) -> int | None:
    """The backend pid of the session holding lock `name`, None when it is free."""
    pid = await db.fetchval(HOLDER, name)
    return None if pid is None else int(pid)
