"""Fixtures of the CLI tests: `cli_env` points the CLI at the test's settings."""

from support.cli_env import cli_env  # noqa: F401  (the fixture)
