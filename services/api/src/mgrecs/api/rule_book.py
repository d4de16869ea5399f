"""The business rules in this API process's memory, read again every few seconds, and their
application to the lists the API serves (whatever their source, so real time from AWS
Personalize obeys them as the self-hosted engine's answers do).

`RuleKeeper.refresh` compares a cheap version of the enabled rules (count, latest change)
every `rules_refresh_seconds` and resolves their targets again when it moved, or every
`rules_catalogue_refresh_seconds` for the catalogue's changes. A failed read keeps the
rules it had (logged): serving never waits on a rule read. With `margin_weight` above 0 the
products' margins are read with the rules (one query) and every list is re-ordered by
relevance blended with margin (`mgrecs.engine.margin`), rules in force or not.
"""

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.common.logging import get_logger
from mgrecs.engine.business_rules import (
    EMPTY_BOOK,
    Applicable,
    BusinessRule,
    RuleBook,
    apply,
)
from mgrecs.engine.records import Scored
from mgrecs.store import products as product_store
from mgrecs.store import rules as rule_store

log = get_logger(__name__)


async def load_book(
    pool: asyncpg.Pool, version: Any = None, margin_weight: float = 0.0
) -> RuleBook:
    """The enabled rules now, resolved against the catalogue (batch inference's too);
    `version` names the book (default: the rules' version); `margin_weight` > 0: with the
    products' margins."""
    if version is None:
        version = await rule_store.version(pool)
    resolved = await rule_store.resolved_rules(pool)
    margins = await product_store.margins(pool) if margin_weight > 0 else None
    return RuleBook(
        [BusinessRule(**dataclasses.asdict(r)) for r in resolved], version, margins, margin_weight
    )


class RuleKeeper:
    """The current `RuleBook` (`book`), kept fresh by `run` (a task of the lifespan)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        refresh_seconds: float,
        catalogue_refresh_seconds: float,
        margin_weight: float = 0.0,
    ) -> None:
        self._pool = pool
        self._margin_weight = margin_weight
        self._refresh = refresh_seconds
        self._catalogue_refresh = catalogue_refresh_seconds
        self._resolved_at = float("-inf")
        self._version: Any = None
        self._reads = 0
        self.book: RuleBook = EMPTY_BOOK
        self.scoped = False
        """Whether a rule is scoped to a region (then a customer's region is looked up)."""

    async def refresh(self) -> bool:
        """Read the rules again when they changed or the catalogue refresh is due; whether
        the book was read again."""
        version = await rule_store.version(self._pool)
        due = time.monotonic() - self._resolved_at >= self._catalogue_refresh
        if version == self._version and not due:
            return False
        self._reads += 1
        book = await load_book(self._pool, (version, self._reads), self._margin_weight)
        self.book = book
        self.scoped = any(r.region is not None for r in book.rules)
        self._version = version
        self._resolved_at = time.monotonic()
        log.info("rules_loaded", rules=len(book.rules))
        return True

    async def run(self) -> None:
        """Refresh forever (errors logged, the rules kept)."""
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the rules stay as they were
                log.warning("rules_not_refreshed", error=str(exc))
            await asyncio.sleep(self._refresh)

    def applicable(self, region: str | None, now: datetime) -> Applicable:
        return self.book.applicable(region, now)


def apply_items(
    items: Sequence[RecommendedItem], k: int, rules: Applicable, exclude: Iterable[str] = ()
) -> list[RecommendedItem]:
    """`items` (best first) under `rules`, at most `k` of them."""
    if rules.empty:
        return list(items[:k])
    scored = [Scored(i.product_id, i.score, i.reason or "") for i in items]
    return [
        RecommendedItem(product_id=s.item_id, score=round(s.score, 4), reason=s.reason or None)
        for s in apply(scored, k, rules, exclude)
    ]
