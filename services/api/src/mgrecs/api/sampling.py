"""Region samples, remembered per window: the sample is fixed for a window by design, and
finding a region's active customers is the expensive part of the region page, so each API
process computes it once per (region, window) and serves the page from the cache tables."""

from collections import OrderedDict
from collections.abc import Awaitable, Callable

MAX_REGIONS = 1024
"""Remembered samples per process (regions x windows); the oldest is dropped beyond it."""


class SampleMemo:
    def __init__(self, max_entries: int = MAX_REGIONS) -> None:
        self._samples: OrderedDict[tuple[str, int], list[str]] = OrderedDict()
        self._max_entries = max_entries

    async def get(
        self, region: str, window: int, compute: Callable[[], Awaitable[list[str]]]
    ) -> list[str]:
        """The remembered sample, or `compute()`'s. Empty samples are not remembered: the
        region may be unknown (a 404) or have its first active customer any minute."""
        key = (region, window)
        if key in self._samples:
            return self._samples[key]
        sample = await compute()
        if sample:
            for stale in [k for k in self._samples if k[1] < window]:
                del self._samples[stale]
            self._samples[key] = sample
            while len(self._samples) > self._max_entries:
                self._samples.popitem(last=False)
        return sample
