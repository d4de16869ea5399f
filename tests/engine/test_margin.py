"""Margin as an objective (mgrecs.engine.margin, its place among the business rules, and the
evaluation's curve): hand-picked cases and the properties of the re-ordering."""

from datetime import UTC, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mgrecs.engine.business_rules import BusinessRule, RuleBook, apply
from mgrecs.engine.margin import WEIGHTS, mean_margin, rerank, rerank_rows
from mgrecs.engine.records import Scored

NOW = datetime(2026, 12, 7, tzinfo=UTC)

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
money = st.floats(min_value=-1000.0, max_value=1000.0, allow_nan=False)


@st.composite
def lists(draw: st.DrawFn) -> tuple[list[Scored], dict[str, float]]:
    n = draw(st.integers(min_value=0, max_value=25))
    values = sorted(draw(st.lists(scores, min_size=n, max_size=n)), reverse=True)
    items = [
        Scored(f"p{i}", v, draw(st.sampled_from(["model", "popular"])))
        for i, v in enumerate(values)
    ]
    known = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    margins = {s.item_id: draw(money) for s, k in zip(items, known, strict=True) if k}
    return items, margins


def ids(items: list[Scored]) -> list[str]:
    return [s.item_id for s in items]


def test_weights_run_from_0_to_1_by_tenths() -> None:
    assert WEIGHTS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def test_a_high_margin_product_climbs_with_the_weight() -> None:
    items = [Scored("a", 1.0, "m"), Scored("b", 0.9, "m"), Scored("c", 0.1, "m")]
    margins = {"a": 1.0, "b": 2.0, "c": 50.0}
    assert ids(rerank(items, margins, 0.0)) == ["a", "b", "c"]
    assert ids(rerank(items, margins, 0.3)) == ["a", "b", "c"]
    assert ids(rerank(items, margins, 0.6)) == ["c", "a", "b"]
    assert ids(rerank(items, margins, 1.0)) == ["c", "b", "a"]


def test_unknown_margin_counts_as_the_lowest() -> None:
    items = [Scored("a", 1.0, "m"), Scored("b", 0.5, "m"), Scored("c", 0.2, "m")]
    assert ids(rerank(items, {"b": 3.0, "c": 1.0}, 1.0)) == ["b", "a", "c"]
    assert ids(rerank(items, {}, 1.0)) == ["a", "b", "c"]


@given(lists())
def test_weight_0_keeps_the_list_exactly(case: tuple[list[Scored], dict[str, float]]) -> None:
    items, margins = case
    assert rerank(items, margins, 0.0) == items


@given(lists())
def test_weight_1_orders_by_margin(case: tuple[list[Scored], dict[str, float]]) -> None:
    items, margins = case
    served = rerank(items, margins, 1.0)
    floor = min(margins.values(), default=0.0)
    values = [margins.get(s.item_id, floor) for s in served]
    assert values == sorted(values, reverse=True)


@given(lists(), st.floats(min_value=0.0, max_value=1.0))
def test_the_same_items_scores_and_reasons_only_reordered(
    case: tuple[list[Scored], dict[str, float]], weight: float
) -> None:
    items, margins = case
    served = rerank(items, margins, weight)
    assert len(served) == len(items)
    assert sorted(served, key=lambda s: s.item_id) == sorted(items, key=lambda s: s.item_id)
    assert rerank(items, margins, weight) == served  # deterministic


@given(lists(), st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=1, max_value=10))
def test_the_batch_form_agrees_with_the_list_form(
    case: tuple[list[Scored], dict[str, float]], weight: float, k: int
) -> None:
    items, margins = case
    top = np.array([[i for i in range(len(items))] + [-1]], dtype=np.int64)
    row_scores = np.array([[s.score for s in items] + [0.0]], dtype=np.float64)
    per_item = np.array([margins.get(s.item_id, np.nan) for s in items], dtype=np.float64)
    rows = rerank_rows(top, row_scores, per_item, weight, k)
    expected = [int(s.item_id[1:]) for s in rerank(items, margins, weight)[:k]]
    assert rows[0].tolist() == expected + [-1] * (k - len(expected))


def test_mean_margin_leaves_out_empty_slots_and_unknown_margins() -> None:
    per_item = np.array([10.0, np.nan, 2.0])
    assert mean_margin(np.array([[0, 1, 2, -1]]), per_item) == 6.0
    assert mean_margin(np.array([[-1, 1]]), per_item) == 0.0


def test_a_book_with_a_margin_weight_reorders_every_list() -> None:
    items = [Scored("a", 1.0, "m"), Scored("b", 0.5, "m")]
    plain = RuleBook()
    margin = RuleBook(margins={"b": 9.0, "a": 1.0}, margin_weight=1.0)
    assert ids(apply(items, 2, plain.applicable(None, NOW))) == ["a", "b"]
    rules = margin.applicable(None, NOW)
    assert rules.candidates(10, 1.0) == 20
    assert ids(apply(items, 2, rules)) == ["b", "a"]


def test_margin_comes_after_filters_and_before_pins() -> None:
    book = RuleBook(
        [
            BusinessRule(1, "filter", frozenset({"c"})),
            BusinessRule(2, "pin", frozenset({"a"}), ("a",), slot=1),
        ],
        margins={"a": 0.0, "b": 1.0, "c": 99.0, "d": 5.0},
        margin_weight=1.0,
    )
    items = [Scored(p, 1.0 - n / 10, "m") for n, p in enumerate("abcd")]
    assert ids(apply(items, 3, book.applicable(None, NOW))) == ["a", "d", "b"]


def test_a_retrain_selection_measures_the_chosen_recipes_curve_when_margins_are_known() -> None:
    """Pairs of products (a<i>, b<i>): customers buy a<i> early and b<i> late."""
    from datetime import timedelta

    from mgrecs.engine.records import Interaction
    from mgrecs.engine.selection import select_recipe

    lines = []
    for c in range(60):
        pair, bought = c % 5, NOW - timedelta(days=100 - c)
        late = bought if c < 40 else NOW - timedelta(hours=c)
        lines += [
            Interaction(f"c{c}", f"a{pair}", 1, bought, "north"),
            Interaction(f"c{c}", f"b{pair}", 1, late, "north"),
        ]
    margins = {f"{side}{i}": float(i) for side in "ab" for i in range(5)}
    with_curve = select_recipe(lines, ["itemknn"], 5.0, margins=margins).to_metrics()
    curve = with_curve["margin_curve"]
    assert [p["weight"] for p in curve["points"]] == list(WEIGHTS)
    assert curve["recipe"] == with_curve["recipe"] and curve["products_with_margin"] == 10
    assert "margin_curve" not in select_recipe(lines, ["itemknn"], 5.0).to_metrics()


@given(
    lists(),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=1, max_value=12),
    st.sets(st.integers(min_value=0, max_value=25), max_size=5),
)
def test_with_rules_a_margin_list_keeps_their_promises(
    case: tuple[list[Scored], dict[str, float]], weight: float, k: int, dropped: set[int]
) -> None:
    """Filtered products stay out, each product once, at most k, pins at their slot."""
    items, margins = case
    excluded = frozenset(f"p{i}" for i in dropped)
    book = RuleBook(
        [BusinessRule(1, "filter", excluded), BusinessRule(2, "pin", frozenset({"x"}), ("x",))],
        margins=margins,
        margin_weight=weight,
    )
    served = apply(items, k, book.applicable(None, NOW))
    assert not excluded & set(ids(served))
    assert len(served) == len(set(ids(served))) <= k
    assert served[0].item_id == "x"
