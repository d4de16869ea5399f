"""The one signal handling of the services: SIGTERM/SIGINT ask the running service to stop
gracefully (finish what it is writing, leave its consumer groups), whichever service it is."""

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], Awaitable[object]]) -> Iterator[None]:
    """While the block runs (inside the event loop), a stop signal runs `stop()` once per
    signal as a task; the loop's default handling comes back when the block ends."""
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[object]] = set()

    def on_signal() -> None:
        task: asyncio.Task[object] = loop.create_task(_awaited(stop))
        stopping.add(task)
        task.add_done_callback(stopping.discard)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def _awaited(stop: Callable[[], Awaitable[object]]) -> object:
    return await stop()
