"""PostgreSQL plumbing: the asyncpg pool every service uses and the errors worth retrying.

The schema and every statement live in `mgrecs.store`."""

import json

import asyncpg

TRANSIENT_DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""Worth retrying: connection loss, restarts, deadlocks, timeouts. InternalClientError is what a
pooled connection raises when the server shut down while it sat idle ("another operation is in
progress"). A consumer pauses on these and retries the same record, never dead-letters it."""

DATABASE_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
"""The database could not be reached or went away (a restart, a shutdown, no connection):
not an error of the statement, which a retry later would repeat. The API answers 503 on
these; the shard worker waits and runs the shard again instead of failing its generation."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Decode JSON/JSONB columns to Python objects and back."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset query on release (an open transaction is still rolled back by asyncpg)."""


async def create_pool(
    dsn: str, min_size: int = 1, max_size: int = 10, reset_sessions: bool = True
) -> asyncpg.Pool:
    """`reset_sessions=False` skips asyncpg's reset query (advisory unlocks, `RESET ALL`,
    ...) when a connection returns to the pool: a second round trip per query, pointless
    for a pool whose users never change session state (the API's reads)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=None if reset_sessions else _keep_session,
    )
    assert pool is not None
    return pool
