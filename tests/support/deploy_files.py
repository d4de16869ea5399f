"""What the deploy tests read: the files under deploy/ and what the project really offers
(console scripts, settings, CLI commands, Prometheus metric names)."""

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer.main
import yaml

from mgrecs.cli.main import app
from mgrecs.common.settings import Settings
from support.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
GUIDE = REPO_ROOT / "docs" / "operations.md"
COMMAND = re.compile(r"(?<!-n )(?<![\w=-])mgrecs ([a-z][\w-]*)(?: ([a-z][\w-]*))?([^\n`]*)")
"""An `mgrecs` command in the operations guide (not kubectl's `-n mgrecs`, not `-U mgrecs`)."""


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.yml")  # type: ignore[no-any-return]


def image_of(service: dict) -> str | None:  # type: ignore[type-arg]
    """The image a compose service builds (its Dockerfile's name), None for a pulled one."""
    if "build" not in service:
        return None
    return Path(service["build"]["dockerfile"]).name.removesuffix(".Dockerfile")


def compose_schema() -> dict[str, Any]:
    return json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())  # type: ignore[no-any-return]


def console_scripts() -> set[str]:
    """Every executable the workspace's pyproject files install."""
    names: set[str] = set()
    for pyproject in REPO_ROOT.glob("*/*/pyproject.toml"):
        names |= set(tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {}))
    return names


def cli_commands() -> dict[str, set[str]]:
    """`mgrecs` subcommands, each with its own subcommands (empty for a plain command)."""
    group = typer.main.get_command(app)
    return {
        name: set(getattr(command, "commands", {}))
        for name, command in group.commands.items()  # type: ignore[attr-defined]
    }


def cli_options(command: str, sub: str) -> set[str]:
    """The options `mgrecs COMMAND [SUB]` takes (a subcommand's when it has subcommands)."""
    found = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    if sub in getattr(found, "commands", {}):
        found = found.commands[sub]
    return {opt for param in found.params for opt in [*param.opts, *param.secondary_opts]}


def setting_env_names() -> set[str]:
    return {f"MGRECS_{name.upper()}" for name in Settings.model_fields}


def env_file_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def defined_metrics() -> set[str]:
    """Metric names the code registers with prometheus_client (counters also as *_total)."""
    pattern = re.compile(r"(Counter|Gauge|Histogram|Summary)\(\s*\"(mgrecs_[a-z0-9_]+)\"", re.S)
    http = re.compile(r"\bhttp_metrics\(\s*\"([a-z]+)\"")
    """A service's HTTP metrics, named after it (mgrecs.common.metrics.http_metrics)."""
    found: list[tuple[str, str]] = []
    for source in [
        *REPO_ROOT.glob("libs/*/src/**/*.py"),
        *REPO_ROOT.glob("services/*/src/**/*.py"),
    ]:
        text = source.read_text()
        found += pattern.findall(text)
        for service in http.findall(text):
            found += [
                ("Counter", f"mgrecs_{service}_requests_total"),
                ("Histogram", f"mgrecs_{service}_request_seconds"),
            ]
    names: set[str] = set()
    for kind, name in found:
        names.add(name)
        if kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\bmgrecs_[a-z0-9_]+", expr))


@dataclass
class Stage:
    """One stage of a Dockerfile: its base and its instructions (continuations joined)."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        values = [args for key, args in self.instructions if key == keyword]
        return values[-1] if values else None


def dockerfile_stages(path: Path) -> dict[str, Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"#{len(stages)}"
            current = stages[name] = Stage(name, parts[0])
        elif current is not None:
            current.instructions.append((keyword.upper(), args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    return json.loads(args)  # type: ignore[no-any-return]


def code(text: str) -> str:
    """The guide's code: fenced blocks and `inline spans`, where commands are written."""
    blocks = re.findall(r"```.*?```", text, re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(blocks + spans)
