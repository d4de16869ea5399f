"""The business rules `bench/api_latency.py --rules N` puts in force (issue 19's figure: the
API's p99 with and without 50 rules), made from the bench's generated shop so that they
touch the lists served: a mix of filters (products, a category in one region, a price range,
out of stock), boosts and buries (products, a category, a brand within a date window), pins
(slot 1 for everyone, other slots per region) and one promotion. They are validated and
stored the way `/v1/admin/rules` does (`mgrecs.common.rules`, the catalogue check, then
`mgrecs.store.rules`), and toggled the same way (`update_rule`), so the API's `RuleKeeper`
reads them as it reads a merchandiser's.
"""

import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.rules import RuleFields
from mgrecs.ingest.sample_data import SampleData
from mgrecs.store import rules as store

ACTOR = "bench"
KIND_CYCLE = ("filter", "boost", "pin", "boost", "filter", "boost", "pin")
"""After the promotion (always the first rule), the kinds in turn: for 50 rules, 14
filters, 21 boosts and buries, 14 pins and the promotion."""
FILTERED_CATEGORIES = 2
"""The least bought categories are the ones category filters hide (one region at a time),
so pins and promotions can name products no filter removes."""


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The rules to create, and the product pinned at slot 1 for everyone (no rule filters
    it): an answer shows it there once the API has loaded the rules."""

    rules: list[RuleFields]
    pinned_first: str


def catalogue_events(data: SampleData) -> list[ProductEvent]:
    """The catalogue records of the products the orders name (stock, cost and attributes:
    what filters and boosts look at); the unsold new products are left out, so the served
    lists are the default bench's."""
    sold = {p.product_id for p in data.products}
    return [
        ProductEvent(
            product_id=entry.product_id,
            name=entry.name,
            category=entry.category,
            price=entry.price,
            cost=entry.cost,
            in_stock=entry.stock > 0,
            launched_at=entry.launched_at,
            attributes=dict(entry.attributes),
        )
        for entry in data.catalogue
        if entry.product_id in sold
    ]


def rule_set(data: SampleData, count: int, now: datetime) -> RuleSet:
    """`count` (>= 1) valid rules over the most bought products of `data` (`KIND_CYCLE`)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    entries = {e.product_id: e for e in data.catalogue}
    bought = Counter(line.product_id for order in data.orders for line in order.lines)
    popular = [p for p, _ in bought.most_common() if p in entries]
    by_category = Counter(entries[p].category for p in popular)
    categories = [c for c, _ in by_category.most_common()]
    hidden = categories[-FILTERED_CATEGORIES:] if len(categories) > 1 else []
    prices = sorted(float(entries[p].price) for p in popular)
    expensive = prices[int(0.95 * (len(prices) - 1))]
    safe = [
        p
        for p in popular
        if entries[p].category not in hidden
        and entries[p].stock > 0
        and float(entries[p].price) < expensive
    ]
    reserved = set(safe[:20]) | set(safe[40:45])  # pinned, promoted: no filter or bury
    others = [p for p in popular if p not in reserved] or popular
    regions: list[str | None] = [*sorted({c.region for c in data.customers if c.region})] or [None]
    short = sorted({entries[p].category for p in popular if entries[p].stock == 0})
    brands = sorted({v for e in entries.values() for k, v in e.attributes if k == "brand"})

    def pick(pool: list[str], start: int, n: int) -> list[str]:
        return [pool[(start + i) % len(pool)] for i in range(n)]

    written: list[dict[str, Any]] = [
        {
            "kind": "promotion",
            "name": "bench: promotion",
            "target": {"products": pick(safe, 40, 5)},
            "share": 0.2,
        }
    ]
    seen: Counter[str] = Counter()
    for index in range(1, count):
        kind = KIND_CYCLE[(index - 1) % len(KIND_CYCLE)]
        j = seen[kind]
        seen[kind] += 1
        region = regions[j % len(regions)]
        name = f"bench: {kind} {j + 1}"
        if kind == "filter":
            variant = j % 4
            targets: list[dict[str, Any]] = [
                {"products": pick(others, 2 * j, 2)},
                {"categories": [hidden[j % len(hidden)]]} if hidden else {"out_of_stock": True},
                {"min_price": expensive},
                {"out_of_stock": True, "categories": [short[j % len(short)]]}
                if short
                else {"out_of_stock": True},
            ]
            scoped = variant in (1, 2) or j >= 4
            written.append(
                {
                    "kind": "filter",
                    "name": name,
                    "region": region if scoped else None,
                    "target": targets[variant],
                }
            )
        elif kind == "boost":
            variant = j % 4
            rule: dict[str, Any] = {"kind": "boost", "name": name}
            if variant == 0:
                rule |= {"target": {"products": pick(safe, 60 + 5 * j, 5)}, "factor": 1.5}
            elif variant == 1:
                category = categories[j % len(categories)]
                rule |= {"region": region, "target": {"categories": [category]}, "factor": 1.3}
            elif variant == 2:
                rule |= {"target": {"products": pick(others, 2 + j, 5)}, "factor": 0.5}
            else:
                rule |= {
                    "target": {"attributes": {"brand": brands[j % len(brands)]}}
                    if brands
                    else {"categories": [categories[0]]},
                    "factor": 1.2,
                    "starts_at": now - timedelta(days=1),
                    "ends_at": now + timedelta(days=7),
                }
            written.append(rule)
        else:
            written.append(
                {
                    "kind": "pin",
                    "name": name,
                    "region": None if j == 0 else region,
                    "target": {"products": [safe[j % len(safe)]]},
                    "slot": 1 if j == 0 else 2 + j % 5,
                }
            )
    rules = [RuleFields.model_validate(r) for r in written]
    pins = [r.target.products[0] for r in rules if r.kind == "pin" and r.target.products]
    return RuleSet(rules, pins[0] if pins else "")


async def create_rules(pool: asyncpg.Pool, rules: list[RuleFields]) -> list[int]:
    """Store `rules` as `/v1/admin/rules` does (the catalogue must know their products and
    categories); their ids."""
    ids = []
    for rule in rules:
        if problem := await store.catalogue_problem(pool, rule.target):
            raise ValueError(f"{rule.name}: {problem}")
        ids.append((await store.create_rule(pool, store.fields_of(rule), ACTOR)).rule_id)
    return ids


async def set_enabled(pool: asyncpg.Pool, rule_ids: list[int], enabled: bool) -> None:
    """Enable or disable the rules (as `PATCH /v1/admin/rules/{id}` with `enabled`)."""
    for rule_id in rule_ids:
        found = await store.rule(pool, rule_id)
        if found is None:
            raise ValueError(f"no rule {rule_id}")
        if found.fields.enabled != enabled:
            fields = dataclasses.replace(found.fields, enabled=enabled)
            await store.update_rule(pool, rule_id, fields, ACTOR)
