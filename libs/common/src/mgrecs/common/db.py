"""PostgreSQL plumbing: the asyncpg pool every service uses and the errors worth retrying.

The schema and every statement live in `mgrecs.store`."""

import json
from collections.abc import Awaitable, Callable

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


ConnectionSetup = Callable[[asyncpg.Connection], Awaitable[None]]
"""What runs on each new connection once its codecs are set, before anyone uses it."""


async def create_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 10,
    reset_sessions: bool = True,
    setup: ConnectionSetup | None = None,
    keep_idle: bool = False,
    jit: bool = True,
) -> asyncpg.Pool:
    """`reset_sessions=False` skips asyncpg's reset query (advisory unlocks, `RESET ALL`,
    ...) when a connection returns to the pool: a second round trip per query, pointless
    for a pool whose users never change session state (the API's reads). `setup` readies
    each new connection (the API prepares its hot statements). `keep_idle` keeps every
    connection opened until the pool closes (no idle timer armed on each release): for a
    pool whose connections are costly to open and ready again (the API's). `jit=False`
    turns PostgreSQL's JIT compilation off for the pool's sessions: for a pool of short
    statements, where the server compiles any statement it estimates costly on every run
    (the API's new-products read: 13 ms with JIT, 0.8 ms without; bench/RESULTS.md)."""

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn)
        if setup is not None:
            await setup(conn)

    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init,
        reset=None if reset_sessions else _keep_session,
        # 0: no idle timer; otherwise asyncpg's default (a connection idle 300 s is closed)
        **({"max_inactive_connection_lifetime": 0} if keep_idle else {}),
        **({} if jit else {"server_settings": {"jit": "off"}}),
    )
    assert pool is not None
    return pool
