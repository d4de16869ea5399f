"""The products' names in this API process's memory, so that naming the products of an
answer's reasons (`mgrecs.api.reason_names`) costs no query once they are known.

An id is looked up once (one batched query per answer for the ids it has not seen, none
after) and kept `ttl_seconds` (a renamed product shows its new name within that); an id
that is no product is remembered as such too. A failed read names nothing (the ids stay,
logged): an answer never waits on a name.
"""

import time
from collections.abc import Iterable, Sequence
from typing import TypeVar

import asyncpg
from pydantic import BaseModel

from mgrecs.api.reason_names import NamedReason, cited, named_cited
from mgrecs.common.logging import get_logger
from mgrecs.store import products

log = get_logger(__name__)

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
        self.reads = 0
        """Queries made (tests and figures count them)."""

    async def names(self, product_ids: Iterable[str]) -> dict[str, str | None]:
        """Those of `product_ids` that are products, with their names (None: none)."""
        now = time.monotonic()
        found: dict[str, str | None] = {}
        missing: list[str] = []
        for product_id in dict.fromkeys(product_ids):
            entry = self._entries.get(product_id)
            if entry is None or entry[0] <= now:
                missing.append(product_id)
            elif entry[1]:
                found[product_id] = entry[2]
        if missing:
            found.update(await self._read(missing, now))
        return found

    def remember(self, names: dict[str, str | None]) -> None:
        """Keep `names` (products, with their names) as if read now (benchmarks, warm-up)."""
        expires = time.monotonic() + self._ttl
        for product_id, name in names.items():
            self._entries[product_id] = (expires, True, name)

    async def _read(self, product_ids: list[str], now: float) -> dict[str, str | None]:
        try:
            self.reads += 1
            known = await products.known_names(self._pool, product_ids)
        except Exception as exc:  # noqa: BLE001 - the ids serve as they are
            log.warning("product_names_not_read", error=str(exc))
            return {}
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
