"""The business rules' filters as batch inference applies them (docs/concepts.md,
Merchandising): those in force when a run scores, each customer's region's, the model asked
for extra candidates so that the written lists keep their length. Boosts, pins and
promotions apply when a list is served (the API applies every rule to every answer; a boost
applied here too would count twice)."""

import dataclasses
from datetime import UTC, datetime

import asyncpg

from mgrecs.engine.business_rules import BusinessRule, RuleBook
from mgrecs.engine.records import Scored
from mgrecs.store.rules import resolved_rules


@dataclasses.dataclass
class Filters:
    """The filters in force at `now`, per customer region (`regions`)."""

    book: RuleBook
    regions: dict[str, str | None]
    now: datetime
    extra: float
    """Ask for n x (1 + extra) candidates while a filter exists."""

    @property
    def any(self) -> bool:
        return any(rule.kind == "filter" for rule in self.book.rules)

    def candidates(self, wanted: int) -> int:
        return round(wanted * (1.0 + self.extra)) if self.any else wanted

    def apply(self, items: list[Scored], region: str | None, k: int) -> list[Scored]:
        """The first `k` of `items` that no filter in force for `region` excludes."""
        excluded = self.book.applicable(region, self.now).excluded
        return [s for s in items if s.item_id not in excluded][:k]

    def users(self, lists: dict[str, list[Scored]], k: int) -> dict[str, list[Scored]]:
        if not self.any:
            return lists
        return {c: self.apply(items, self.regions.get(c), k) for c, items in lists.items()}

    def similar(self, lists: dict[str, list[Scored]], k: int) -> dict[str, list[Scored]]:
        if not self.any:
            return lists
        return {p: self.apply(items, None, k) for p, items in lists.items()}


async def current_filters(
    pool: asyncpg.Pool, regions: dict[str, str | None], extra: float
) -> Filters:
    """The enabled rules now, resolved against the catalogue."""
    book = RuleBook([BusinessRule(**dataclasses.asdict(r)) for r in await resolved_rules(pool)])
    return Filters(book, regions, datetime.now(UTC), extra)
