"""The steps of a job (export, quality, train, ...) with their seconds, written to the job's
`processed_ticks` row as each one ends, so `mgrecs jobs` shows a running job's progress and
where a failed one stopped."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from mgrecs.batch.metrics import STEP_SECONDS
from mgrecs.store import jobs


class Steps:
    """Records the steps of one job; without a tick id (a job called directly, as in the
    benchmarks) they are only kept in `done`. Each step is timed in `STEP_SECONDS` under the
    tick's kind (`direct` without a tick)."""

    def __init__(
        self, pool: asyncpg.Pool, tick_id: str | None = None, kind: str = "direct"
    ) -> None:
        self._pool = pool
        self._tick_id = tick_id
        self._kind = kind
        self.done: list[dict[str, Any]] = []

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        """Time the block as step `name`; a step that raises is recorded as failed."""
        started = time.perf_counter()
        status = "failed"
        try:
            yield
            status = "ok"
        finally:
            seconds = time.perf_counter() - started
            STEP_SECONDS.labels(self._kind, name).observe(seconds)
            await self._record({"step": name, "seconds": round(seconds, 3), "status": status})

    async def _record(self, step: dict[str, Any]) -> None:
        self.done.append(step)
        if self._tick_id is not None:
            await jobs.append_step(self._pool, self._tick_id, step)
