"""A log line never raises into the code that logs it, whatever stream it meets."""

import io
import sys

import pytest

from mgrecs.common.logging import configure_logging, get_logger


def test_a_line_written_while_stderr_is_a_closed_stand_in_goes_to_the_real_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A CLI run in a thread (typer's test runner) swaps `sys.stderr` and closes its stand-in
    when it ends; a service logging in the event loop at that moment must go on."""
    configure_logging()
    closed = io.TextIOWrapper(io.BytesIO())
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    get_logger("test").info("still_logging", answer=42)
    monkeypatch.undo()
    assert '"still_logging"' in capfd.readouterr().err
