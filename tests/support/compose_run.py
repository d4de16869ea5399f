"""deploy/compose.yml as local processes: each service's command (its image's ENTRYPOINT and
CMD, or compose's `command`), environment (the image's ENV, the env file, compose's
`environment` with its `${VAR:?}` interpolated) and replica count, with the names of the
compose network mapped to this machine (Docker is not available here).

Only what a container would see is mapped: host names (`postgres:5432`, `kafka:9092`,
`engine:8003`), container paths (volumes and the image's COPY destinations) and, because the
replicas share one host, each replica's listening port. Everything else is taken as written,
so a variable, command or port that does not work in compose does not work here either.
"""

import re
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from support.deploy_files import DEPLOY, Stage, compose, dockerfile_stages, exec_form
from support.paths import REPO_ROOT

PORT_SETTINGS = {
    "api": "MGRECS_API_PORT",
    "ingest": "MGRECS_INGEST_PORT",
    "engine": "MGRECS_ENGINE_PORT",
    "tracker": "MGRECS_TRACKER_METRICS_PORT",
    "batch": "MGRECS_BATCH_METRICS_PORT",
    "scheduler": "MGRECS_SCHEDULER_METRICS_PORT",
    "connector": "MGRECS_CONNECTOR_METRICS_PORT",
}
"""The setting each image's service listens on (its HEALTHCHECK's port by default)."""
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
RUNTIME_PATH_VARIABLES = {"PATH"}
"""Image variables that describe the container's file system, not the service: not copied."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Replica:
    """One process of a compose service, ready to start."""

    service: str
    index: int
    argv: list[str]
    env: dict[str, str]
    health_url: str | None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index + 1}"


@dataclass(frozen=True)
class Network:
    """Where the compose names point on this machine."""

    database_url: str
    kafka_bootstrap: str
    mounts: dict[str, Path]
    """A container path where a named volume is mounted -> the local directory for it
    (`volume_mounts`)."""


def runtime_stage(service: dict[str, Any]) -> Stage:
    return dockerfile_stages(REPO_ROOT / service["build"]["dockerfile"])["runtime"]


def image_env(stage: Stage) -> dict[str, str]:
    """The runtime stage's ENV (`KEY=value` pairs, shell-quoted like Docker's)."""
    found: dict[str, str] = {}
    for key, args in stage.instructions:
        if key == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                if name not in RUNTIME_PATH_VARIABLES:
                    found[name] = value
    return found


def image_copies(stage: Stage) -> dict[str, Path]:
    """Container path -> the repository file the image copies there (not the build's venv)."""
    copies: dict[str, Path] = {}
    for key, args in stage.instructions:
        if key == "COPY" and not args.startswith("--from"):
            source, destination = args.split()
            copies[destination] = REPO_ROOT / source
    return copies


def argv(service: dict[str, Any], stage: Stage) -> list[str]:
    """ENTRYPOINT + (compose's `command` or CMD), as Docker runs them."""
    entrypoint = exec_form(stage.last("ENTRYPOINT") or "[]")
    command = service.get("command") or exec_form(stage.last("CMD") or "[]")
    return [*entrypoint, *command]


def health_url(service: dict[str, Any], stage: Stage) -> str | None:
    """The URL compose's healthcheck (or else the image's HEALTHCHECK) asks."""
    if test := service.get("healthcheck", {}).get("test"):
        return str(test[-1])
    check = stage.last("HEALTHCHECK")
    if check is None or "CMD" not in check:
        return None
    return str(exec_form(check.split("CMD", 1)[1])[-1])


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` from the shell's variables;
    a missing required one fails as `docker compose up` would."""

    def one(match: re.Match[str]) -> str:
        name, operator, text = match.groups()
        if shell.get(name):
            return shell[name]
        if operator == "?":
            raise KeyError(f"compose needs {name}: {text}")
        return text or ""

    return INTERPOLATION.sub(one, value)


def env_file(service: dict[str, Any], shell: dict[str, str]) -> dict[str, str]:
    """The service's env file as compose reads it (`${MGRECS_ENV_FILE:-example.env}`)."""
    path = DEPLOY / interpolate(service["env_file"], shell)
    return {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}


def localized(value: str, network: Network, copies: dict[str, Path], engine: str) -> str:
    """`value` with the compose network's names replaced by this machine's."""
    if value.startswith("postgresql://") and "@postgres:" in value:
        return network.database_url
    value = value.replace("kafka:9092", network.kafka_bootstrap)
    value = value.replace("http://engine:8003", engine)
    for destination, source in copies.items():
        if value == destination:
            return str(source)
    for mount, directory in network.mounts.items():
        if value == mount or value.startswith(mount + "/"):
            return str(directory) + value[len(mount) :]
    return value


def volume_mounts(services: dict[str, Any], volumes: dict[str, Path]) -> dict[str, Path]:
    """Where services mount each named volume -> the local directory standing for it."""
    found = {}
    for service in services.values():
        for entry in service.get("volumes", []):
            name, _, rest = entry.partition(":")
            if name in volumes:
                found[rest.split(":")[0]] = volumes[name]
    return found


def replicas(shell: dict[str, str], network: Network) -> list[Replica]:
    """Every process compose would start for the project's own images, jobs first (in file
    order), each replica with its own listening port."""
    services = compose()["services"]
    engine_port = free_port()
    engine = f"http://127.0.0.1:{engine_port}"
    found: list[Replica] = []
    for name, service in services.items():
        if "build" not in service:
            continue
        stage = runtime_stage(service)
        copies = image_copies(stage)
        environment = {
            **image_env(stage),
            **env_file(service, shell),
            **{k: interpolate(str(v), shell) for k, v in service.get("environment", {}).items()},
        }
        environment = {k: localized(v, network, copies, engine) for k, v in environment.items()}
        image = Path(service["build"]["dockerfile"]).name.removesuffix(".Dockerfile")
        for index in range(service.get("deploy", {}).get("replicas", 1)):
            env = dict(environment)
            url = health_url(service, stage)
            if image in PORT_SETTINGS:
                # the clients' `engine:8003` is the first replica (compose's DNS: any of them)
                port = engine_port if image == "engine" and index == 0 else free_port()
                container_port = _port_of(url) if url else None
                env[PORT_SETTINGS[image]] = str(port)
                if url and container_port:
                    url = url.replace(f":{container_port}/", f":{port}/")
            found.append(Replica(name, index, argv(service, stage), env, url))
    return found


def _port_of(url: str) -> int | None:
    match = re.search(r":(\d+)/", url)
    return int(match.group(1)) if match else None


def is_job(replica: Replica) -> bool:
    """A one-shot job (the cli image): run to completion before the services start."""
    return replica.argv[0] == "mgrecs"
