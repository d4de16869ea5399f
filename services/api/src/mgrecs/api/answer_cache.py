"""Computed answers remembered in process memory for a few seconds, per cache generation.

Some answers are fixed for a while by design: the region page is the same for a region and
its parameters within one sampling window and one cache generation, yet costs a few
database round trips and an aggregation. Routes ask `AnswerCache.get(kind, key, compute)`
with a key naming everything the answer depends on (window included); the current cache
generation is added to the key here, read at most every `GENERATION_REFRESH_SECONDS`, so a
new or retired generation is picked up within that. An entry older than the TTL is
recomputed once, in the background (callers meanwhile get the previous answer of the same
generation, so a recompute never shows in their latency); errors are never remembered; the
memory holds at most `max_entries` answers.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter

from mgrecs.store.cache import current_generation

GENERATION_REFRESH_SECONDS = 1.0
MAX_ENTRIES = 4096

LOOKUPS = Counter(
    "mgrecs_api_answer_cache_total",
    "Answers looked up in the in-process answer cache: hit, stale (served while refreshed), miss",
    ["kind", "result"],
)


@dataclass
class _Entry:
    value: Any
    expires: float


class AnswerCache:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        generation_refresh_seconds: float = GENERATION_REFRESH_SECONDS,
    ) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._generation_refresh = generation_refresh_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._computing: dict[Hashable, asyncio.Task[Any]] = {}
        self._generation: int | None = None
        self._generation_read = float("-inf")
        self._generation_lock = asyncio.Lock()

    async def get(
        self, kind: str, key: tuple[Hashable, ...], compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        """`compute()`'s answer for `key`, remembered for the TTL (0: always computed)."""
        if self._ttl <= 0:
            return await compute()
        full_key = (kind, await self._current_generation(), *key)
        entry = self._entries.get(full_key)
        if entry is None:
            LOOKUPS.labels(kind, "miss").inc()
            return await asyncio.shield(self._computation(full_key, compute))
        if entry.expires > time.monotonic():
            LOOKUPS.labels(kind, "hit").inc()
        else:
            LOOKUPS.labels(kind, "stale").inc()
            self._computation(full_key, compute).add_done_callback(self._retrieve_error)
        return entry.value

    def _computation(
        self, full_key: Hashable, compute: Callable[[], Awaitable[Any]]
    ) -> asyncio.Task[Any]:
        """The one running computation of `full_key` (started if none): concurrent callers
        share it, and a caller that goes away does not cancel it for the others."""
        task = self._computing.get(full_key)
        if task is None:
            task = asyncio.create_task(self._compute(full_key, compute))
            self._computing[full_key] = task
        return task

    async def _compute(self, full_key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await compute()
        except Exception:
            self._entries.pop(full_key, None)
            raise
        finally:
            del self._computing[full_key]
        self._entries[full_key] = _Entry(value, time.monotonic() + self._ttl)
        self._entries.move_to_end(full_key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return value

    @staticmethod
    def _retrieve_error(task: asyncio.Task[Any]) -> None:
        """A failed background refresh removed its entry: the next caller computes it again
        (and sees the error)."""
        if not task.cancelled():
            task.exception()

    async def _current_generation(self) -> int | None:
        if time.monotonic() - self._generation_read < self._generation_refresh:
            return self._generation
        async with self._generation_lock:
            if time.monotonic() - self._generation_read >= self._generation_refresh:
                generation = await current_generation(self._pool)
                if generation != self._generation:
                    self._entries.clear()
                self._generation = generation
                self._generation_read = time.monotonic()
        return self._generation
