"""The products' names in this API process's memory, so that naming the products of an
answer's reasons (`mgrecs.api.reason_names`) costs no query once they are known.

An id is looked up once (one batched query per answer for the ids it has not seen, none
after); an id that is no product is remembered as such too. After `ttl_seconds` an entry is
read again, but not by the answer that finds it expired: that answer is served the name it
had, and one background read takes every expired id asked for meanwhile (a renamed product
shows its new name within `ttl_seconds` and one read after). Read in the answers, entries
read together expired together and every answer re-read its own: right after a mass expiry
about 120 reads per 1,000 answers, 630 with a 1-s ttl (bench/RESULTS.md, names read again
in the background). A failed read names nothing new (the ids stay, logged): an answer
never waits on a name it had.
"""

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import TypeVar

import asyncpg
from pydantic import BaseModel

from mgrecs.api.reason_names import NamedReason, cited, named_cited
from mgrecs.common.logging import get_logger
from mgrecs.store import products

log = get_logger(__name__)

GATHER_SECONDS = 0.5
"""A background read takes the expired ids asked for during this long: one query for them
all (back to back, each round took the ids of about one answer: as many reads as before)."""
RETRY_SECONDS = 5.0
"""After a failed background read, its ids are tried again this much later (at most the ttl)."""

MAX_ENTRIES = 200_000
"""Ids remembered at most (about 30 MB); past it the memo starts again empty."""

Item = TypeVar("Item", bound=BaseModel)
"""An answer's item with `reason: str | None` and `reason_product_ids: list[str]`."""


class NameMemo:
    """Product id -> name (None: no name), read from `products` on first use."""

    def __init__(
        self, pool: asyncpg.Pool, ttl_seconds: float, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[float, bool, str | None]] = {}
        """id -> (expires, is a product, name)."""
        self._due: set[str] = set()
        """Expired ids asked for since the last background read."""
        self._reading: asyncio.Task[None] | None = None
        """The background read of `_due`, while it runs."""
        self.reads = 0
        """Queries made, in answers and in the background (tests and figures count them)."""

    async def names(self, product_ids: Iterable[str]) -> dict[str, str | None]:
        """Those of `product_ids` that are products, with their names (None: none)."""
        now = time.monotonic()
        found: dict[str, str | None] = {}
        missing: list[str] = []
        for product_id in dict.fromkeys(product_ids):
            entry = self._entries.get(product_id)
            if entry is None:
                missing.append(product_id)
                continue
            if entry[0] <= now:
                self._due.add(product_id)
            if entry[1]:
                found[product_id] = entry[2]
        if self._due and self._reading is None:
            self._reading = asyncio.create_task(self._read_due())
        if missing:
            found.update(await self._read(missing, now) or {})
        return found

    async def _read_due(self) -> None:
        """Read every expired id asked for, until none is left: one query per round, each
        round taking what was asked for in the GATHER_SECONDS before it. The ids of a round
        are due again only `ttl_seconds` after it, or RETRY_SECONDS after a failed read
        (answers keep the names they had), never while it runs."""
        try:
            while self._due:
                await asyncio.sleep(GATHER_SECONDS)
                due, self._due = list(self._due), set()
                now = time.monotonic()
                self._postpone(due, now + self._ttl)
                if await self._read(due, now) is None:
                    self._postpone(due, now + min(self._ttl, RETRY_SECONDS))
        finally:
            self._reading = None

    def _postpone(self, product_ids: list[str], expires: float) -> None:
        for product_id in product_ids:
            entry = self._entries.get(product_id)
            if entry is not None:
                self._entries[product_id] = (expires, entry[1], entry[2])

    async def renewed(self) -> None:
        """Return once no background read is running (tests wait on it)."""
        while self._reading is not None:
            await asyncio.wait([self._reading])

    async def close(self) -> None:
        """Stop a background read (the lifespan's end)."""
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    def remember(self, names: dict[str, str | None]) -> None:
        """Keep `names` (products, with their names) as if read now (benchmarks, warm-up)."""
        expires = time.monotonic() + self._ttl
        for product_id, name in names.items():
            self._entries[product_id] = (expires, True, name)

    async def _read(self, product_ids: list[str], now: float) -> dict[str, str | None] | None:
        """Those of `product_ids` that are products, with their names, remembered until
        `now` + `ttl_seconds`; None when the read failed (logged)."""
        try:
            self.reads += 1
            known = await products.known_names(self._pool, product_ids)
        except Exception as exc:  # noqa: BLE001 - the ids serve as they are
            log.warning("product_names_not_read", error=str(exc))
            return None
        if len(self._entries) + len(product_ids) > self._max:
            self._entries.clear()
        expires = now + self._ttl
        for product_id in product_ids:
            self._entries[product_id] = (expires, product_id in known, known.get(product_id))
        return known

    async def named_reasons(self, reasons: Sequence[str | None]) -> list[NamedReason | None]:
        """Each of `reasons` with the product ids in it replaced by names (None for none: no
        reason), at most one query, none when every id is known."""
        found = [cited(r or "") for r in reasons]
        wanted = [c for f in found for c in f.candidates]
        names = await self.names(wanted) if wanted else {}
        return [
            None if not r else named_cited(r, f, names) if f.candidates else NamedReason(r, [])
            for r, f in zip(reasons, found, strict=True)
        ]  # each reason parsed once; one with no candidate names no product

    async def name_items(self, items: Sequence[Item]) -> list[Item]:
        """`items` with the product ids of their reasons replaced by names, the ids in
        `reason_product_ids` (`named_reasons`); an item naming none is served as it is."""
        named = await self.named_reasons([getattr(i, "reason", None) for i in items])
        return [
            item if found is None or not found.product_ids else _renamed(item, found)
            for item, found in zip(items, named, strict=True)
        ]


def _renamed(item: Item, found: NamedReason) -> Item:
    """A new `item` with the named reason: built from its fields (half of what
    `model_copy(update=...)` costs, and these run for every item of every answer)."""
    fields = {**item.__dict__, "reason": found.text, "reason_product_ids": found.product_ids}
    return type(item)(**fields)
