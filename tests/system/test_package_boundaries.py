"""Packages import only what their place allows: the libraries (`libs/`) no service, a service
no other service, and the CLI (an application) only the services' `public` modules."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.paths import REPO_ROOT

LIBRARIES = {"common", "store", "engine"}
CLI = "cli"


def packages() -> dict[str, Path]:
    """Each package's top module under `mgrecs` (e.g. `engine_service`) and its source folder."""
    found: dict[str, Path] = {}
    for src in [*REPO_ROOT.glob("libs/*/src/mgrecs/*"), *REPO_ROOT.glob("services/*/src/mgrecs/*")]:
        if src.is_dir() and src.name != "__pycache__":
            found[src.name] = src
    return found


def imported_modules(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every `mgrecs.*` module a source file of `folder` imports, with the file."""
    for source in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            yield from ((source, name) for name in names if name.startswith("mgrecs."))


def allowed(importer: str, module: str) -> bool:
    """Whether package `importer` may import `module` (`mgrecs.<package>[.<sub>...]`)."""
    parts = module.split(".")
    target = parts[1]
    if target in (importer, *LIBRARIES):
        return importer not in LIBRARIES or target in LIBRARIES
    if importer == CLI:
        return parts[2:] == ["public"]
    return False


@pytest.mark.parametrize("name", sorted(packages()))
def test_a_package_imports_no_other_service(name: str) -> None:
    crossing = [
        f"{source.relative_to(REPO_ROOT)}: {module}"
        for source, module in imported_modules(packages()[name])
        if not allowed(name, module)
    ]
    assert crossing == []


def test_every_service_and_library_is_checked() -> None:
    assert {"api", "batch", "cli", "common", "engine", "engine_service", "ingest", "store"} <= set(
        packages()
    )
