"""Fixtures of the batch tests: an S3 API (moto's server) for the artifact store."""

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from mgrecs.cli.embedded import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
