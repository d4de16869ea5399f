"""Start and stop the services as separate processes, the way a deployment runs them."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class ServiceProcess:
    """One service (its console script) running with its own environment and log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        executable = Path(sys.executable).parent / self.command[0]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(executable), *self.command[1:]],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Ask the service to shut down (SIGTERM); it finishes what it is doing first."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 15.0) -> None:
        """Wait for the exit; SIGKILL a service that has not exited within `timeout`."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def stop_all(services: list[ServiceProcess]) -> None:
    """Terminate every service at once, then wait for each (shutdowns overlap)."""
    for service in services:
        service.terminate()
    for service in services:
        service.wait()


def wait_healthy(url: str, process: ServiceProcess, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200; fail early with the log if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited; last log lines:\n{process.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(
        f"{process.name} not healthy at {url} after {timeout:.0f}s:\n{process.log_tail()}"
    )
