"""PostgreSQL access: the asyncpg pool every service uses, and schema migrations."""

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Decode JSON/JSONB columns to Python objects and back."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


def alembic_config(dsn: str) -> Config:
    """Alembic configured in code, so no alembic.ini has to sit next to a deployment."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["dsn"] = dsn
    return config


def migrate(dsn: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent: safe on every start)."""
    command.upgrade(alembic_config(dsn), revision)


async def migrate_async(dsn: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrate, dsn, revision)


async def fetch_scalar(pool: asyncpg.Pool, query: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(query, *args)
