"""The served model scores known customers with their order history, as evaluation does: a
repeat recipe (`buy-again`, a blend with it) ranks by distinct orders and dates in
`recommend`, `recommend_all` and `rank`, before and after a model file, while a discovery
model's file does not carry the history."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.model_file import HISTORY_ORDERS
from mgrecs.engine.order_history import OrderHistory
from mgrecs.engine.recipes import make_recipe
from mgrecs.engine.records import Interaction

NOW = datetime(2026, 11, 1, tzinfo=UTC)
BLEND = {
    "components": [
        {"recipe": "buy-again", "params": {}, "weight": 1.0},
        {"recipe": "popularity", "params": {}, "weight": 0.1},
    ]
}


def line(customer: str, product: str, days_ago: float, quantity: int = 1) -> Interaction:
    return Interaction(customer, product, quantity, NOW - timedelta(days=days_ago), "north")


def repeat_lines() -> list[Interaction]:
    """Customer "c" bought A in 3 separate orders and B once, 24 of them. Others make B the
    product people re-buy (6 customers, 2 orders each) and A one they buy once (6
    customers), so from binary rows alone (one order each, no date) B ranks above A."""
    lines = [line("c", "A", days) for days in (30, 20, 10)] + [line("c", "B", 5, quantity=24)]
    for n in range(6):
        lines += [line(f"b{n}", "B", 40), line(f"b{n}", "B", 12)]
        lines.append(line(f"a{n}", "A", 15))
    return lines


def top_two(answer: list[Any]) -> list[str]:
    return [s.item_id for s in answer if s.item_id in {"A", "B"}]


def served(model: RecommenderModel) -> dict[str, list[str]]:
    """The order of A and B for "c" in every way the model serves a known customer."""
    single = model.recommend(
        model.history("c"), model.region_of("c"), 5, exclude_purchased=False, customer_id="c"
    )
    batch = model.recommend_all(5, ["c"], exclude_purchased=False)["c"]
    ranked = model.rank(model.history("c"), None, ["B", "A"], customer_id="c")
    return {"recommend": top_two(single), "recommend_all": top_two(batch), "rank": top_two(ranked)}


@pytest.mark.parametrize("recipe", [("buy-again", {}), ("blend", BLEND)], ids=lambda r: r[0])
def test_a_served_repeat_recipe_ranks_by_distinct_orders_before_and_after_a_file(
    recipe: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, params = recipe
    model = RecommenderModel.fit(repeat_lines(), recipe=make_recipe(name, **params))
    expected = {"recommend": ["A", "B"], "recommend_all": ["A", "B"], "rank": ["A", "B"]}
    assert served(model) == expected
    model.save(tmp_path / "model.npz")
    assert served(RecommenderModel.load(tmp_path / "model.npz")) == expected


def test_without_the_customer_the_row_alone_ranks_the_other_way() -> None:
    """The data tells history from binary rows apart: an anonymous row with the same
    products (one order each, no date) puts B first."""
    model = RecommenderModel.fit(repeat_lines(), recipe=make_recipe("buy-again"))
    answer = model.recommend(["A", "B"], "north", 5, exclude_purchased=False)
    assert top_two(answer) == ["B", "A"]


def test_only_a_model_whose_recipe_uses_the_history_stores_it(tmp_path: Path) -> None:
    for name, keeps in (("rp3beta", False), ("buy-again", True)):
        path = tmp_path / f"{name}.npz"
        RecommenderModel.fit(repeat_lines(), recipe=make_recipe(name)).save(path)
        with np.load(path) as arrays:
            assert (f"{HISTORY_ORDERS}.data" in arrays.files) is keeps, name


@settings(max_examples=50, deadline=None)
@given(
    stored=st.lists(st.tuples(st.integers(1, 5), st.floats(0, 1e6)), min_size=3, max_size=3),
    mentions=st.lists(st.integers(1, 3), min_size=4, max_size=4),
    now=st.floats(1e6, 2e6),
)
def test_each_mention_beyond_the_stored_purchase_is_one_more_order_now(
    stored: list[tuple[int, float]], mentions: list[int], now: float
) -> None:
    """Products 0-2 stored for the customer, product 3 only in the request's history."""
    orders = sparse.csr_matrix(([o for o, _ in stored], [0, 1, 2], [0, 3]), shape=(1, 4))
    dates = sparse.csr_matrix(([t for _, t in stored], [0, 1, 2], [0, 3]), shape=(1, 4))
    history = OrderHistory(orders, dates, now=1e6)
    items = np.arange(4, dtype=np.int64)
    context = history.customer_context(0, items, np.array(mentions), region=0, now=now)
    assert context.orders is not None and context.last_bought is not None
    for item in range(4):
        before, at = stored[item] if item < 3 else (0, now)
        fresh = mentions[item] - (item < 3)
        assert context.orders[0, item] == before + fresh
        assert context.last_bought[0, item] == (now if fresh else at)
    assert context.now == now


def test_batch_gives_what_recommend_gives_each_known_customer() -> None:
    model = RecommenderModel.fit(repeat_lines(), recipe=make_recipe("blend", **BLEND))
    batch = model.recommend_all(4, exclude_purchased=False)
    for customer in model.customer_ids:
        single = model.recommend(
            model.history(customer),
            model.region_of(customer),
            4,
            exclude_purchased=False,
            customer_id=customer,
        )
        assert batch[customer] == single, customer
