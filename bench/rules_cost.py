"""CPU cost of the business rules on one served list (issue 19, item 3): 50 rules in force
(20 filters of 200 products, 20 boosts and buries of 500, 9 region pins, a promotion) over a
10,000-product catalogue, 20 candidates ruled down to 10, against no rules. Process CPU time,
so the figure holds on a shared machine. Run: `.venv/bin/python bench/rules_cost.py`.
The issue's end-to-end figure (bench-api p99 with and without 50 rules) is
`bench/api_latency.py --rules 50`'s.
"""

import random
import time
from datetime import UTC, datetime

from mgrecs.api.rule_book import apply_items
from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.engine.business_rules import BusinessRule, RuleBook

LISTS = 1000
REPEATS = 5


def fifty_rules(products: list[str], rng: random.Random) -> list[BusinessRule]:
    rules = []
    for rule_id in range(1, 51):
        if rule_id <= 20:
            region = rng.choice([None, "north"])
            rules.append(
                BusinessRule(rule_id, "filter", frozenset(rng.sample(products, 200)), region=region)
            )
        elif rule_id <= 40:
            factor = rng.choice([0.5, 1.5, 2.0])
            rules.append(
                BusinessRule(rule_id, "boost", frozenset(rng.sample(products, 500)), factor=factor)
            )
        elif rule_id <= 49:
            pinned = rng.choice(products)
            slot = rule_id % 10 + 1
            rules.append(
                BusinessRule(
                    rule_id, "pin", frozenset({pinned}), (pinned,), slot=slot, region="north"
                )
            )
        else:
            promoted = tuple(rng.sample(products, 5))
            rules.append(
                BusinessRule(rule_id, "promotion", frozenset(promoted), promoted, share=0.2)
            )
    return rules


def main() -> None:
    rng = random.Random(1)
    products = [f"P{n:05d}" for n in range(10_000)]
    book = RuleBook(fifty_rules(products, rng), 1)
    now = datetime.now(UTC)
    lists = [
        [
            RecommendedItem(product_id=p, score=1 - j / 40, reason=None)
            for j, p in enumerate(rng.sample(products, 20))
        ]
        for _ in range(LISTS)
    ]
    for name, rules in (("no rules", RuleBook()), ("50 rules", book)):
        start = time.process_time()
        for _ in range(REPEATS):
            for items in lists:
                apply_items(items, 10, rules.applicable("north", now))
        per_list = (time.process_time() - start) / (LISTS * REPEATS)
        print(f"{name}: {per_list * 1e6:.1f} µs CPU per list (20 candidates -> 10)")


if __name__ == "__main__":
    main()
