"""Schema migrations (alembic, configured in code): bring a database to the newest schema."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
