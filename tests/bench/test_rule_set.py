"""`bench/api_latency.py --rules N`'s rule set (bench/rule_set.py): every rule valid and stored
through the rules store, all N loaded by the API's rule read (`load_book`), the mix the issue
names, targets that touch the products the lists hold, and toggled off and on as a whole."""

import importlib.util
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from types import ModuleType

import asyncpg
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.api.rule_book import load_book
from mgrecs.ingest.sample_data import SampleData, generate
from mgrecs.store.orders import write_orders
from mgrecs.store.products import write_catalogue
from support.paths import REPO_ROOT

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@cache
def rule_set() -> ModuleType:
    """bench/rule_set.py (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("rule_set", REPO_ROOT / "bench" / "rule_set.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def shop() -> SampleData:
    return generate(seed=11, customers=300, products=120, orders=2000, anchor=NOW)


def popular(data: SampleData, n: int) -> set[str]:
    bought = Counter(line.product_id for order in data.orders for line in order.lines)
    return {p for p, _ in bought.most_common(n)}


async def test_fifty_rules_are_stored_loaded_and_touch_the_lists(pool: asyncpg.Pool) -> None:
    bench = rule_set()
    data = shop()
    await write_orders(pool, data.orders)
    await write_catalogue(pool, bench.catalogue_events(data))
    made = bench.rule_set(data, 50, NOW)
    assert Counter(r.kind for r in made.rules) == {
        "boost": 21,
        "filter": 14,
        "pin": 14,
        "promotion": 1,
    }
    ids = await bench.create_rules(pool, made.rules)
    assert len(ids) == 50

    book = await load_book(pool)
    assert len(book) == 50
    assert all(r.products for r in book.rules), "a rule's target matches no product"
    top = popular(data, 30)
    regions = sorted({c.region for c in data.customers})
    for region in regions:
        rules = book.applicable(region, NOW)
        assert rules.pins[0] == (0, made.pinned_first)
        assert rules.promoted and rules.share == 0.2
        assert rules.excluded & top, f"no filter touches {region}'s popular products"
        assert any(f > 1 for p, f in rules.factors.items() if p in top)
        assert any(f < 1 for p, f in rules.factors.items() if p in top)
        assert made.pinned_first not in rules.excluded
    assert book.applicable("north", NOW).key != book.applicable("south", NOW).key

    await bench.set_enabled(pool, ids, False)
    assert len(await load_book(pool)) == 0
    await bench.set_enabled(pool, ids, True)
    assert len(await load_book(pool)) == 50


@hypothesis_settings(max_examples=40, deadline=None)
@given(count=st.integers(min_value=1, max_value=150))
def test_any_count_gives_that_many_valid_rules_one_promotion(count: int) -> None:
    made = rule_set().rule_set(shop(), count, NOW)
    assert len(made.rules) == count
    kinds = Counter(r.kind for r in made.rules)
    assert kinds["promotion"] == 1 and made.rules[0].kind == "promotion"
    first_pin = next((r for r in made.rules if r.kind == "pin"), None)
    if first_pin is None:
        assert made.pinned_first == ""
    else:
        assert first_pin.slot == 1 and first_pin.region is None
        assert first_pin.target.products == [made.pinned_first]
