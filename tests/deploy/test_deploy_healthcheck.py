"""deploy/healthcheck.py, the images' HEALTHCHECK: exit 0 only when the target answers."""

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mgrecs.cli.embedded import free_port
from support.deploy_files import DEPLOY


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def check(target: str, **env: str) -> int:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), target],
        env={**os.environ, **env},
        capture_output=True,
        timeout=30,
    ).returncode


def test_healthy_only_when_the_endpoint_answers_200(server: str) -> None:
    assert check(f"{server}/healthz") == 0
    assert check(f"{server}/readyz") != 0  # 503
    assert check(f"http://127.0.0.1:{free_port()}/healthz") != 0  # nothing listens
