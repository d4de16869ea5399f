"""Alembic environment: runs migrations over an asyncpg connection.

The DSN comes from `config.attributes["dsn"]` (set by `mgrecs.store.schema.migrate`) or from
`MGRECS_DATABASE_URL`. asyncpg parses it itself, so unix-socket DSNs work too.
"""

import asyncio

import asyncpg
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from mgrecs.common.settings import Settings

config = context.config
dsn: str = config.attributes.get("dsn") or Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(dsn)
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them online")
asyncio.run(_run_async())
