"""Merchandisers' business rules (stored as data, docs/concepts.md "Merchandising") applied to
a served list: filters drop products, boosts and buries multiply their scores, promotions
take a share of the slots (`rules.insert_promoted`, reason `promoted`) and pins put a
product at a slot.

A rule arrives here resolved: `BusinessRule.products` is the set of catalogue products its
target matched (the store resolves categories, price ranges, stock, attributes), so applying
rules is set lookups on product ids, whatever list they come from (the cache, the engine in
real time, popularity, similar items, a ranking, the region page, batch inference).

Order of application, on a list of candidates best first:
1. filters: every product a rule in force excludes leaves the list;
2. boosts and buries: a product's score is multiplied by the factor of every rule in force
   that matches it (> 1 boosts, < 1 buries), and the list is sorted again (stable);
2b. margin: with a margin weight above 0 (setting `margin_weight`), the list is re-ordered
   by relevance blended with the products' margin (`mgrecs.engine.margin`);
3. promotions: the promoted products of the rules in force (in rule order, each once, not
   excluded) take `round(k x share)` evenly spaced slots (shares add up, at most 1);
4. pins: each pinned product (not excluded) sits at its slot, promoted items keep theirs
   (unless a pin took it), the other items keep their order around them; two pins on one
   slot: the older rule wins, the other is not placed; a slot past the end of a shorter
   list puts the product last, and a slot past the k served leaves a product that is a
   candidate where its score puts it;
5. the first k are served. Scores stay in 0.0-1.0 (a boost past 1.0 is shown as 1.0, the
   order is the boosted one); an inserted item takes the score of the item it displaces.

A rule is in force for a list when it is enabled (only enabled rules reach the engine), its
region is None or the list's region, and `now` is in its window [starts_at, ends_at).
"""

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from mgrecs.engine.margin import rerank
from mgrecs.engine.records import Scored
from mgrecs.engine.rules import PROMOTED_REASON, insert_promoted

RuleKind = Literal["filter", "boost", "pin", "promotion"]
RULE_KINDS: tuple[RuleKind, ...] = ("filter", "boost", "pin", "promotion")
PINNED_REASON = "pinned"
"""The reason of a pinned product that was not in the list already (one that was keeps its
own)."""


@dataclass(frozen=True)
class BusinessRule:
    """One enabled rule, its target resolved to product ids."""

    rule_id: int
    kind: RuleKind
    products: frozenset[str] = frozenset()
    """filter, boost: the products the target matches; pin, promotion: the products named."""
    ordered: tuple[str, ...] = ()
    """pin: the pinned product; promotion: the promoted products, most wanted first."""
    region: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    factor: float = 1.0
    """boost: > 1 boosts, < 1 buries."""
    slot: int = 1
    """pin: 1-based."""
    share: float = 0.0
    """promotion: the share of the slots (0 < share <= 1)."""

    def in_force(self, region: str | None, now: datetime) -> bool:
        """Whether the rule applies to a list of `region` (None: a list of no region, which
        only unscoped rules apply to) served at `now`."""
        if self.region is not None and self.region != region:
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True)
class Applicable:
    """The rules in force for one list, merged; `NOTHING` when none is."""

    excluded: frozenset[str] = frozenset()
    factors: Mapping[str, float] = field(default_factory=dict)
    promoted: tuple[str, ...] = ()
    share: float = 0.0
    pins: tuple[tuple[int, str], ...] = ()
    """(0-based slot, product), one per slot, by slot."""
    key: tuple[int, ...] = ()
    """The ids of the rules merged (within one `RuleBook`, the same rules give the same key)."""
    margins: Mapping[str, float] = field(default_factory=dict)
    """Per product, its margin (price - cost), when `margin_weight` > 0."""
    margin_weight: float = 0.0
    """How much margin weighs against relevance (0: relevance only)."""

    @property
    def empty(self) -> bool:
        return not (
            self.excluded or self.factors or self.promoted or self.pins or self.margin_weight
        )

    def candidates(self, limit: int, extra: float) -> int:
        """How many candidates to ask a source for so that `limit` survive the filters and
        boosts (or margin) can lift an item from further down: `limit` while no rule is in
        force, else `limit x (1 + extra)` (at least one more)."""
        if not (self.excluded or self.factors or self.margin_weight):
            return limit
        return max(limit + 1, round(limit * (1.0 + extra)))


NOTHING = Applicable()


def merge(rules: Iterable[BusinessRule]) -> Applicable:
    """The rules (in force for one list; oldest first) as one `Applicable`."""
    excluded: set[str] = set()
    factors: dict[str, float] = {}
    promoted: dict[str, None] = {}
    share = 0.0
    pins: dict[int, str] = {}
    ordered = sorted(rules, key=lambda r: r.rule_id)
    for rule in ordered:
        if rule.kind == "filter":
            excluded |= rule.products
        elif rule.kind == "boost":
            for product in rule.products:
                factors[product] = factors.get(product, 1.0) * rule.factor
        elif rule.kind == "promotion":
            promoted.update(dict.fromkeys(rule.ordered))
            share += rule.share
        elif (
            rule.kind == "pin"
            and rule.ordered
            and rule.slot - 1 not in pins
            and rule.ordered[0] not in pins.values()
        ):
            pins[rule.slot - 1] = rule.ordered[0]
    return Applicable(
        excluded=frozenset(excluded),
        factors={p: f for p, f in factors.items() if f != 1.0},
        promoted=tuple(p for p in promoted if p not in excluded),
        share=min(1.0, share),
        pins=tuple(sorted((s, p) for s, p in pins.items() if p not in excluded)),
        key=tuple(r.rule_id for r in ordered),
    )


class RuleBook:
    """The enabled rules at one moment (`version` names it: a changed rule set is a new
    book), with the merged rules of each (region, rules in force) remembered."""

    def __init__(
        self,
        rules: Sequence[BusinessRule] = (),
        version: Hashable = None,
        margins: Mapping[str, float] | None = None,
        margin_weight: float = 0.0,
    ) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: r.rule_id))
        self.version = version
        self._margin = (
            Applicable(margins=dict(margins or {}), margin_weight=margin_weight)
            if margin_weight > 0
            else NOTHING
        )
        """What every list gets when no rule is in force: margin, or nothing."""
        self._merged: dict[tuple[int, ...], Applicable] = {}
        self._by_region: dict[str | None, tuple[datetime, datetime, Applicable]] = {}
        self._boundaries = sorted(
            {t for r in self.rules for t in (r.starts_at, r.ends_at) if t is not None}
        )

    def __len__(self) -> int:
        return len(self.rules)

    def applicable(self, region: str | None, now: datetime) -> Applicable:
        """The rules in force for a list of `region` served at `now`, merged (remembered per
        region until the next start or end of a rule's window)."""
        if not self.rules:
            return self._margin
        known = self._by_region.get(region)
        if known is not None and known[0] <= now < known[1]:
            return known[2]
        in_force = tuple(r.rule_id for r in self.rules if r.in_force(region, now))
        merged = self._margin
        if in_force:
            found = self._merged.get(in_force)
            if found is None:
                ids = set(in_force)
                found = merge(r for r in self.rules if r.rule_id in ids)
                if self._margin.margin_weight:
                    found = replace(
                        found,
                        margins=self._margin.margins,
                        margin_weight=self._margin.margin_weight,
                    )
                if len(self._merged) < 1024:
                    self._merged[in_force] = found
            merged = found
        since, until = self._stretch(now)
        if len(self._by_region) < 4096:
            self._by_region[region] = (since, until, merged)
        return merged

    def _stretch(self, now: datetime) -> tuple[datetime, datetime]:
        """The stretch of time around `now` in which no rule's window starts or ends."""
        since, until = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        for instant in self._boundaries:
            if instant <= now:
                since = max(since, instant)
            else:
                until = min(until, instant)
        return since, until


EMPTY_BOOK = RuleBook()


def apply(
    items: Sequence[Scored], k: int, rules: Applicable, exclude: Iterable[str] = ()
) -> list[Scored]:
    """`items` (best first) under `rules`, at most `k` (see the module doc). `exclude`: ids
    never to insert (the product whose similar items these are)."""
    if rules.empty:
        return list(items[:k])
    # Not `set(exclude) | rules.excluded`: that copied every excluded product (thousands
    # with a category or price filter) on every list served.
    excluded, own = rules.excluded, set(exclude)
    kept = [s for s in items if s.item_id not in rules.excluded]
    if rules.factors:
        factors = rules.factors
        rescored = [(s.score * factors.get(s.item_id, 1.0), s) for s in kept]
        rescored.sort(key=lambda pair: -pair[0])
        kept = [
            s if boosted == s.score else Scored(s.item_id, min(1.0, max(0.0, boosted)), s.reason)
            for boosted, s in rescored
        ]
    if rules.margin_weight > 0:
        kept = rerank(kept, rules.margins, rules.margin_weight)
    if rules.promoted and rules.share > 0:
        promoted = [p for p in rules.promoted if p not in excluded and p not in own]
        kept = insert_promoted(kept, promoted, k, rules.share)
    if rules.pins:
        pins = [(s, p) for s, p in rules.pins if p not in excluded and p not in own]
        # Promoted items keep their slots too (unless a pin took it): pinned after the pins.
        taken = {s for s, _ in pins} | {p for _, p in pins}
        pins += [
            (slot, s.item_id)
            for slot, s in enumerate(kept[:k])
            if s.reason == PROMOTED_REASON and slot not in taken and s.item_id not in taken
        ]
        kept = _pin(kept, pins, k)
    return kept[:k]


def _pin(items: list[Scored], pins: list[tuple[int, str]], k: int) -> list[Scored]:
    """`items` with each pinned product at its 0-based slot (one past the end when the list
    is shorter), the others in their order around them. A candidate pinned past the k
    served slots stays where its score puts it: held back for a slot nobody sees, it would
    leave a gap that pulls the pins before it out of their slots."""
    if not pins:
        return items
    if any(slot >= k for slot, _ in pins):  # rare: no set of the candidates otherwise
        candidates = {s.item_id for s in items}
        pins = [(slot, p) for slot, p in pins if slot < k or p not in candidates]
    pinned = {p for _, p in pins}
    own = {s.item_id: s for s in items if s.item_id in pinned}
    rest = [s for s in items if s.item_id not in pinned]
    result: list[Scored] = []
    queue = sorted(pins)
    while queue or rest:
        if queue and (queue[0][0] <= len(result) or not rest):
            _, product = queue.pop(0)
            score = rest[0].score if rest else (result[-1].score if result else 0.0)
            found = own.get(product)
            result.append(
                replace(found, score=score) if found else Scored(product, score, PINNED_REASON)
            )
        else:
            result.append(rest.pop(0))
        if len(result) >= k and not queue:
            break
    return result


__all__ = [
    "NOTHING",
    "PINNED_REASON",
    "PROMOTED_REASON",
    "RULE_KINDS",
    "Applicable",
    "BusinessRule",
    "RuleBook",
    "apply",
    "merge",
]
