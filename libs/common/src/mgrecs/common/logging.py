"""Structured logging: JSON lines by default, readable console output when asked."""

import contextlib
import logging
import sys

import structlog


class _Stderr:
    """Whatever `sys.stderr` is when a line is written (a test runner swaps it, then closes
    its stand-in: a logger holding the stand-in would fail on every later line). A stand-in
    closed between the lookup and the write (a CLI run in another thread ending just then)
    sends the line to the process's own stderr instead of raising into the caller."""

    def write(self, text: str) -> int:
        try:
            return sys.stderr.write(text)
        except ValueError:  # "I/O operation on closed file"
            return sys.__stderr__.write(text) if sys.__stderr__ else len(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError):
            sys.stderr.flush()


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route stdlib and structlog output through one structured renderer on stderr."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,  # configuring again (a CLI, a test) takes effect
    )
    logging.basicConfig(level=level, stream=_Stderr(), format="%(name)s %(levelname)s %(message)s")


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
