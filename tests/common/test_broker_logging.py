"""FastStream's log lines never hold on to a stream that was `sys.stdout` for a while."""

import io
import logging
import sys

import pytest

from mgrecs.common import topics
from mgrecs.common.consume import make_broker
from mgrecs.common.settings import Settings


def handlers_on(stream: io.StringIO) -> list[logging.Handler]:
    loggers = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    return [h for lg in loggers for h in lg.handlers if getattr(h, "stream", None) is stream]


async def test_a_broker_started_under_a_stand_in_stdout_leaves_no_handler_on_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI run by typer's test runner swaps `sys.stdout` for a stand-in it closes after;
    FastStream's default logger adds a handler on whatever `sys.stdout` is when a broker
    starts, and every later line of any broker in the process then fails on it (CI failed so:
    the batch worker's start raised `I/O operation on closed file`)."""
    stand_in = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stand_in)
    broker = make_broker(settings)

    @broker.subscriber(topics.topic(topics.SCHEDULE_TICKS, settings), group_id="log-test")
    async def handle(body: bytes) -> None: ...

    await broker.start()
    await broker.stop()
    monkeypatch.undo()
    assert handlers_on(stand_in) == []
