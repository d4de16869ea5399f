"""Databases on a PostgreSQL server: create (from a template) and drop them, for the
embedded stack, tests and benchmarks."""

import asyncpg


async def run_on_server(server_url: str, *statements: str) -> None:
    """Run statements (e.g. CREATE/DROP DATABASE, which refuse transactions) one by one."""
    conn = await asyncpg.connect(server_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """(Re)create database `name` on the server of `server_url`; return its URL."""
    copy = f' TEMPLATE "{template}"' if template else ""
    await run_on_server(
        server_url,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}"{copy}',
    )
    return database_url(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    await run_on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database path replaced by `name` (query kept)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))
