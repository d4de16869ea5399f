"""What the benchmarks share: a freshly migrated database to run against."""

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from mgrecs.cli.embedded import EmbeddedPostgres
from mgrecs.store.databases import create_database
from mgrecs.store.schema import migrate_async


@contextlib.asynccontextmanager
async def migrated_database(name: str) -> AsyncIterator[str]:
    """URL of database `name`, recreated and migrated, on the server named by
    MGRECS_BENCH_DATABASE_URL or else on an embedded PostgreSQL wiped afterwards."""
    server_url = os.environ.get("MGRECS_BENCH_DATABASE_URL")
    embedded = None
    if server_url is None:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="mgbench")) / "pg").start()
        server_url = embedded.url
    try:
        url = await create_database(server_url, name)
        await migrate_async(url)
        yield url
    finally:
        if embedded is not None:
            embedded.wipe()
