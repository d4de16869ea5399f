"""Fixtures of the tracker tests: `service` starts a console script as a real process."""

from support.faults import service  # noqa: F401  (the fixture)
