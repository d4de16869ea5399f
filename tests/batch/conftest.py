"""Fixtures of the batch tests: the shop's purchases, an S3 API (moto's server) for the
artifact store, and the CLI pointed at the test's settings."""

from collections.abc import Iterator

import asyncpg
import pytest
from moto.server import ThreadedMotoServer

from mgrecs.cli.embedded import free_port
from support.cli_env import cli_env  # noqa: F401  (the fixture)
from support.shop import insert_shop


@pytest.fixture
async def purchases(pool: asyncpg.Pool) -> None:
    """`support.shop.ORDERS`, and c7 (north), a customer who never ordered."""
    await insert_shop(pool, [("c7", "north")])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
