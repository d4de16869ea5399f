"""The api's pool kept ready: at start it opens `api_pool_size` connections, each with the hot
routes' statements prepared, and a connection opened later (after the server dropped one) is
readied the same way; `fill` gives back whatever it held when a connection fails."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import pytest

from mgrecs.api import hot_statements
from mgrecs.api.app import create_app
from mgrecs.common.db import create_pool
from mgrecs.common.settings import Settings
from mgrecs.store import cache, repurchase
from support.helpers import asgi_client

HOT = {cache.USER_LIST, repurchase.BUY_AGAIN}
"""Statements every pooled connection must hold prepared (the two per-customer routes')."""


@asynccontextmanager
async def every_connection(pool: asyncpg.Pool) -> AsyncIterator[list[asyncpg.Connection]]:
    """All of `pool`'s connections, held at once (so each is a different one)."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(pool.acquire()) for _ in range(pool.get_size())]


async def prepared(conn: asyncpg.Connection) -> set[str]:
    return {row[0] for row in await conn.fetch("SELECT statement FROM pg_prepared_statements")}


async def test_the_pool_is_open_and_ready_before_the_first_request(settings: Settings) -> None:
    settings.api_pool_size = 3
    app = create_app(settings)
    async with asgi_client(app) as client:
        pool: asyncpg.Pool = app.state.pool
        assert pool.get_size() == 3
        async with every_connection(pool) as connections:
            for conn in connections:
                assert await prepared(conn) >= HOT
        assert (await client.get("/healthz")).status_code == 200


async def test_a_connection_opened_later_is_readied_too(settings: Settings) -> None:
    settings.api_pool_size = 2
    app = create_app(settings)
    async with asgi_client(app) as client:
        pool: asyncpg.Pool = app.state.pool
        async with every_connection(pool) as connections:
            old = {conn.get_server_pid() for conn in connections}
            await connections[0].execute(
                "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid",
                list(old - {connections[0].get_server_pid()}),
            )
        # The server dropped one: asyncpg sees it closed and opens a new one on acquire.
        for _ in range(100):
            async with every_connection(pool) as connections:
                pids = {conn.get_server_pid() for conn in connections}
                if pids != old and all(not conn.is_closed() for conn in connections):
                    for conn in connections:
                        assert await prepared(conn) >= HOT
                    break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the pool did not replace the dropped connection")
        assert len(pids & old) == 1
        assert (await client.get("/v1/users/nobody/buy-again")).status_code == 404


async def test_fill_gives_back_what_it_held_when_a_connection_fails(settings: Settings) -> None:
    opened = 0

    async def third_fails(conn: asyncpg.Connection) -> None:
        nonlocal opened
        opened += 1
        if opened == 3:
            raise RuntimeError("the third connection cannot be readied")

    pool = await create_pool(settings.database_url, min_size=0, max_size=4, setup=third_fails)
    try:
        with pytest.raises(ExceptionGroup) as failed:
            await hot_statements.fill(pool, 4)
        assert failed.group_contains(RuntimeError, match="third connection")
        assert pool.get_idle_size() == pool.get_size()  # none left held
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_the_api_sessions_run_without_jit_and_other_pools_keep_the_server_setting(
    settings: Settings,
) -> None:
    """PostgreSQL JIT-compiles a statement it estimates costly on every run: the api's
    new-products read took 13 ms with it, 0.8 ms without (bench/RESULTS.md)."""
    settings.api_pool_size = 2
    app = create_app(settings)
    async with asgi_client(app), every_connection(app.state.pool) as connections:
        assert [await conn.fetchval("SHOW jit") for conn in connections] == ["off", "off"]
    plain = await asyncpg.connect(settings.database_url)
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        server_setting = await plain.fetchval("SHOW jit")
        assert await pool.fetchval("SHOW jit") == server_setting
    finally:
        await pool.close()
        await plain.close()
