"""A circuit breaker for the PutEvents target: tell an outage from a bad call.

After `threshold` consecutive failures the target is taken as down and the circuit opens:
calls wait instead of hammering it, and failures while it is open spend no attempts (an
outage is not the events' fault, so nothing is dead-lettered for it). When the open period
ends, one call goes through as the probe while the others keep waiting: a success closes the
circuit, a failure opens it again for twice as long (up to MAX_OPEN_SECONDS).
"""

import asyncio
import time

from mgrecs.common.consume import Stopping
from mgrecs.tracker.metrics import CIRCUIT_OPEN

MAX_OPEN_SECONDS = 10.0
PROBE_POLL_SECONDS = 0.05


class CircuitBreaker:
    def __init__(self, sink: str, threshold: int, open_seconds: float) -> None:
        self._gauge = CIRCUIT_OPEN.labels(sink)
        self._threshold = threshold
        self._first_open = open_seconds
        self._open_seconds = open_seconds
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self._gauge.set(0)

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        self._open_seconds = self._first_open
        self._open_until = 0.0
        self._gauge.set(0)

    def failure(self) -> bool:
        """Count a failure; True when the circuit is open after it (the target is down)."""
        self._failures += 1
        self._probing = False
        if self._failures < self._threshold:
            return False
        if not self.is_open:
            self._open_until = time.monotonic() + self._open_seconds
            self._open_seconds = min(self._open_seconds * 2, MAX_OPEN_SECONDS)
            self._gauge.set(1)
        return True

    async def closed(self, stopping: Stopping) -> bool:
        """Wait while the circuit is open or another call is the probe; False when `stopping`
        was set meanwhile."""
        while True:
            if stopping.is_set():
                return False
            if not self.is_open:
                if self._failures < self._threshold:
                    return True  # closed
                if not self._probing:
                    self._probing = True  # this call is the probe
                    return True
            wait = max(self._open_until - time.monotonic(), PROBE_POLL_SECONDS)
            try:
                await asyncio.wait_for(stopping.wait(), wait)
            except TimeoutError:
                continue
