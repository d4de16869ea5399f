"""Region samples, remembered per window: the sample is fixed for a window by design, and
finding a region's active customers is the expensive part of the region page, so each API
process computes it once per (region, window) and serves the page from the cache tables.

A sample of n customers is the first n of the window's order, so one remembered sample
answers every smaller `sample_size`; a larger one extends it (the customers already shown
stay in it, so a refresh never changes an answer within the window)."""

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from mgrecs.api.repository import RegionSample

MAX_REGIONS = 1024
"""Remembered samples per process (regions x windows); the oldest is dropped beyond it."""


def _covers(sample: RegionSample, size: int) -> bool:
    """Whether `sample` answers `size`: it is that large, or holds the whole population."""
    return size <= len(sample.customers) or len(sample.customers) >= sample.population


class SampleMemo:
    def __init__(self, max_entries: int = MAX_REGIONS) -> None:
        self._samples: OrderedDict[tuple[str, int], RegionSample] = OrderedDict()
        self._max_entries = max_entries

    async def get(
        self,
        region: str,
        window: int,
        size: int,
        draw: Callable[[int], Awaitable[RegionSample]],
    ) -> RegionSample:
        """The first `size` customers of the remembered sample, or of `draw(size)`'s. Empty
        samples are not remembered: the region may be unknown (a 404) or have its first
        active customer any minute."""
        key = (region, window)
        known = self._samples.get(key)
        if known is not None and _covers(known, size):
            return RegionSample(known.customers[:size], known.population)
        drawn = await draw(size)
        if known is not None:
            seen = set(known.customers)
            extra = [c for c in drawn.customers if c not in seen]
            drawn = RegionSample(
                known.customers + extra[: size - len(known.customers)], drawn.population
            )
        if drawn.customers:
            for stale in [k for k in self._samples if k[1] < window]:
                del self._samples[stale]
            self._samples[key] = drawn
            while len(self._samples) > self._max_entries:
                self._samples.popitem(last=False)
        return drawn
