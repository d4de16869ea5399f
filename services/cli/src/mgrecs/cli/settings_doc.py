"""docs/settings.md is generated from `Settings`, so the settings reference cannot drift
from the code: `python -m mgrecs.cli.settings_doc [OUT]` (or `make docs`) writes it."""

import json
import re
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from mgrecs.common.settings import Settings

DEFAULT_OUT = Path("docs/settings.md")
CODE = re.compile(r"`(\w+)`")

HEADER = """\
# Settings

<!-- Generated from mgrecs.common.settings.Settings by `make docs`: edit the field's
docstring there, not this file (tests/docs/test_docs.py fails when they differ). -->

Every service reads its settings from `MGRECS_*` environment variables (or a `.env` file in
its working directory) and uses only the ones it needs. Deployments set them in
`deploy/example.env` (Compose) and `deploy/k8s/config.yml` (Kubernetes); secrets and what
`MGRECS_ENV=production` refuses are in [operations.md](operations.md#security).

| variable | default | meaning |
| --- | --- | --- |
"""


def env_name(field: str) -> str:
    """The environment variable a field is read from."""
    prefix = Settings.model_config.get("env_prefix") or ""
    return f"{prefix}{field}".upper()


def _cell(text: str) -> str:
    """Text that stays inside one table cell: a single line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def _variable(match: re.Match[str]) -> str:
    name = match[1]
    return f"`{env_name(name)}`" if name in Settings.model_fields else match[0]


def _meaning(field: FieldInfo) -> str:
    """The field's description, other fields named by their variables, and its choices."""
    text = CODE.sub(_variable, field.description or "")
    if get_origin(field.annotation) is Literal:
        choices = ", ".join(f"`{choice}`" for choice in get_args(field.annotation))
        text = f"{text} One of {choices}."
    return text.strip()


def undocumented() -> list[str]:
    """Fields without a description, which the generated page would list bare."""
    return [name for name, field in Settings.model_fields.items() if not field.description]


def render() -> str:
    """The whole page, one row per field in declaration order."""
    rows = [
        f"| `{env_name(name)}` | {_cell(_default(field.default))} | {_cell(_meaning(field))} |"
        for name, field in Settings.model_fields.items()
    ]
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    out.write_text(render())
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
