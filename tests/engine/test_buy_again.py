"""Buy again done right: the `buy-again` recipe on the `repurchase` formula, the
`buy-again-count` baseline, the parameters retrain chooses, and the baseline in
`mgrecs evaluate --repeat`; on hand-built histories whose right order is known, and on
arbitrary ones (Hypothesis) for what must always hold."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from typer.testing import CliRunner

from mgrecs.cli.main import app
from mgrecs.engine.buy_again_choice import select_buy_again
from mgrecs.engine.dataset import Lines
from mgrecs.engine.evaluation import BASELINES, REPEAT_BASELINE
from mgrecs.engine.evaluation.evaluate import evaluate_recipe
from mgrecs.engine.evaluation.tuning import TUNING_K
from mgrecs.engine.recipes import (
    GRIDS,
    RECIPES,
    BuyAgainCountRecipe,
    BuyAgainRecipe,
    TrainingData,
    make_recipe,
)
from mgrecs.engine.recipes.base import ContextScoring, ScoringContext
from mgrecs.engine.recipes.history import HistoryFirst
from mgrecs.engine.recipes.support import history_context
from mgrecs.engine.records import Interaction
from mgrecs.engine.repurchase import BuyAgainParams, buy_again_scores
from mgrecs.engine.selection import validation_split
from support.helpers import NOW, training_data

Line = tuple[int, int, float, int]
"""(customer, product, days ago, quantity): one order line; equal days ago of one customer
are one order."""


def context_scores(recipe: HistoryFirst, data: TrainingData) -> np.ndarray:
    """Every training customer's scores, with their history as evaluation knows it."""
    customers = np.arange(data.matrix.shape[0], dtype=np.int64)
    return recipe.score_context(data.matrix, history_context(data, customers))


def ranking(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable")]


# ---------------------------------------------------------------- the formula, by hand


@pytest.mark.parametrize("recipe", [BuyAgainRecipe(), BuyAgainCountRecipe()])
def test_distinct_orders_count_not_quantity(recipe: HistoryFirst) -> None:
    """24 units in one order say less than 3 separate orders of one unit."""
    lines = [(0, 0, 10.0, 24)] + [(0, 1, d, 1) for d in (10.0, 20.0, 30.0)]
    data = training_data(lines, n_customers=1, n_items=3)
    scores = context_scores(recipe.fit(data), data)[0]
    assert scores[1] > scores[0] > scores[2]


def test_recency_decays_with_the_half_life() -> None:
    """Same orders, one last bought 10 days ago, one 70: the history parts are 0.5 ** (10/30)
    and 0.5 ** (70/30) with a 30-day half-life; without decay they are equal."""
    lines = [(0, 0, 10.0, 1), (0, 1, 70.0, 1), (1, 0, 50.0, 1), (1, 1, 50.0, 1)]
    data = training_data(lines, n_customers=2, n_items=3)
    flat = {"repeat_weight": 0.0, "due_weight": 0.0}
    decayed = context_scores(BuyAgainRecipe(half_life_days=30.0, **flat).fit(data), data)[0]
    tie = BuyAgainRecipe.TIE * np.array(BuyAgainRecipe(**flat).fit(data).state()["popularity"])
    np.testing.assert_allclose(
        decayed[:2] - 1.0 - tie[:2], [0.5 ** (10 / 30), 0.5 ** (70 / 30)], rtol=1e-5
    )
    steady = context_scores(BuyAgainRecipe(half_life_days=None, **flat).fit(data), data)[0]
    np.testing.assert_allclose(steady[:2] - tie[:2], [2.0, 2.0], rtol=1e-5)


def coffee_buyers() -> list[Line]:
    """Twelve customers buy coffee (item 0) every 21 days; customer 0 last bought it 21 days
    ago (due), customer 1 yesterday (not due). Item 1 is bread, bought once by each."""
    lines = [(c, 0, 5.0 + 21.0 * n, 1) for c in range(2, 12) for n in range(4)]
    lines += [(0, 0, 21.0 + 21.0 * n, 1) for n in range(3)]
    lines += [(1, 0, 1.0 + 21.0 * n, 1) for n in range(3)]
    lines += [(c, 1, 3.0, 1) for c in range(12)]
    return lines


def test_a_customer_is_due_when_the_usual_interval_has_passed() -> None:
    data = training_data(coffee_buyers(), n_customers=12, n_items=2)
    undecayed = {"half_life_days": None, "repeat_weight": 0.0}
    due = context_scores(BuyAgainRecipe(due_weight=1.0, **undecayed).fit(data), data)
    # 1 + 3 orders x the share of the usual 21 days that has passed (21/21, or 1/21)
    assert due[0, 0] == pytest.approx(1.0 + 3.0, abs=0.01)
    assert due[1, 0] == pytest.approx(1.0 + 3.0 / 21.0, abs=0.01)
    blind = context_scores(BuyAgainRecipe(due_weight=0.0, **undecayed).fit(data), data)
    assert blind[0, 0] == pytest.approx(blind[1, 0])


def test_products_people_re_buy_rank_first() -> None:
    """Item 0 is re-bought by every purchaser (coffee), item 1 by none (a television): one
    order of each ranks item 0 first unless repeat_weight is 0."""
    lines = [(c, 0, d, 1) for c in range(8) for d in (5.0, 40.0)]
    lines += [(c, 1, 5.0, 1) for c in range(8, 16)]
    lines += [(16, 0, 5.0, 1), (16, 1, 5.0, 1)]
    data = training_data(lines, n_customers=17, n_items=2)
    rebuy = context_scores(BuyAgainRecipe(repeat_weight=1.0).fit(data), data)[16]
    assert rebuy[0] - 1.0 > 2 * (rebuy[1] - 1.0) > 0
    flat = context_scores(BuyAgainRecipe(repeat_weight=0.0).fit(data), data)[16]
    assert flat[0] == pytest.approx(flat[1], abs=2e-3)  # the popularity tie-break alone


def test_without_context_rows_tell_only_what_was_bought() -> None:
    """`score(rows)`: every product of a row counts as one order of unknown date (its repeat
    rate still counts); an empty row is the popularity completion alone."""
    data = training_data(coffee_buyers(), n_customers=12, n_items=3)
    recipe = BuyAgainRecipe().fit(data)
    plain = recipe.score(data.matrix)
    assert plain[0, 0] == pytest.approx(plain[1, 0])  # dates unknown: due or not, alike
    assert plain[0, 0] > plain[0, 1] > 1.0 > plain[0, 2] == 0.0  # item 2: nobody bought it
    completion = recipe.state()["popularity"]
    empty = recipe.score(sparse.csr_matrix((1, 3), dtype=np.float32))
    np.testing.assert_array_equal(empty[0], completion)
    assert isinstance(recipe, ContextScoring) and isinstance(BuyAgainCountRecipe(), ContextScoring)


def test_count_baseline_orders_ties_and_completion_by_popularity() -> None:
    """Customer 0: item 0 in 3 orders, items 1 and 2 in one each (item 2 the more popular),
    then the rest by popularity (item 3, bought by four others, before item 4 by one)."""
    lines = [(0, 0, d, 1) for d in (1.0, 8.0, 15.0)] + [(0, 1, 90.0, 1), (0, 2, 90.0, 1)]
    lines += [(c, 2, 3.0, 1) for c in (1, 2)] + [(c, 3, 2.0, 1) for c in (1, 2, 3, 4)]
    lines += [(5, 4, 2.0, 1)]
    data = training_data(lines, n_customers=6, n_items=6)
    scores = context_scores(BuyAgainCountRecipe().fit(data), data)[0]
    assert ranking(scores) == [0, 2, 1, 3, 4, 5]
    assert 3.0 <= scores[0] < 4.0  # 3 orders + a popularity share below 1


# ---------------------------------------------------------------- always


histories = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.integers(0, 7),
        st.floats(0.0, 400.0, allow_nan=False),
        st.integers(1, 48),
    ),
    min_size=1,
    max_size=60,
)
params = st.builds(
    BuyAgainParams,
    half_life_days=st.one_of(st.none(), st.floats(1.0, 365.0)),
    repeat_weight=st.floats(0.0, 1.0),
    due_weight=st.floats(0.0, 1.0),
    frequency_power=st.floats(0.0, 2.0),
)


@settings(max_examples=60, deadline=None)
@given(lines=histories, chosen=params)
def test_history_always_ranks_above_every_other_product(
    lines: list[Line], chosen: BuyAgainParams
) -> None:
    data = training_data(lines, n_customers=6, n_items=8)
    for recipe in (BuyAgainRecipe(**chosen.as_dict()), BuyAgainCountRecipe()):
        scores = context_scores(recipe.fit(data), data)
        assert scores.dtype == np.float32 and np.isfinite(scores).all()
        for customer in range(6):
            bought = np.zeros(8, dtype=bool)
            bought[data.matrix[customer].indices] = True
            if bought.any() and not bought.all():
                assert scores[customer, bought].min() >= 1.0 > scores[customer, ~bought].max()


@settings(max_examples=60, deadline=None)
@given(lines=histories)
def test_count_baseline_never_ranks_fewer_orders_first(lines: list[Line]) -> None:
    data = training_data(lines, n_customers=6, n_items=8)
    scores = context_scores(BuyAgainCountRecipe().fit(data), data)
    orders = history_context(data, np.arange(6)).orders
    assert orders is not None
    for customer in range(6):
        row = orders[customer]
        counts = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        by_score = sorted(counts, key=lambda i: -scores[customer, i])
        assert [counts[i] for i in by_score] == sorted(counts.values(), reverse=True)


@settings(max_examples=60, deadline=None)
@given(later=st.floats(1.0, 200.0), chosen=params)
def test_an_older_last_purchase_never_scores_higher(later: float, chosen: BuyAgainParams) -> None:
    """Same orders, later 'now': with no due factor, recency can only lower a score."""
    undue = BuyAgainParams(chosen.half_life_days, chosen.repeat_weight, 0.0, 1.0)
    orders = np.array([float(n) for n in range(1, 9)])
    days = np.linspace(0.0, 300.0, 8)
    rate, interval = np.full(8, 0.4), np.full(8, 20.0)
    now = buy_again_scores(orders, days, rate, interval, undue)
    after = buy_again_scores(orders, days + later, rate, interval, undue)
    assert (after <= now + 1e-12).all()
    if undue.half_life_days is not None:
        np.testing.assert_allclose(after / now, 0.5 ** (later / undue.half_life_days))


@settings(max_examples=30, deadline=None)
@given(lines=histories, chosen=params)
def test_restored_recipes_score_a_context_exactly_alike(
    lines: list[Line], chosen: BuyAgainParams
) -> None:
    data = training_data(lines, n_customers=6, n_items=8)
    context = history_context(data, np.arange(6))
    for recipe in (BuyAgainRecipe(**chosen.as_dict()), BuyAgainCountRecipe()):
        recipe.fit(data)
        arrays = {key: np.array(value) for key, value in recipe.state().items()}
        restored = RECIPES[recipe.name].from_state(recipe.params(), arrays)
        assert isinstance(restored, HistoryFirst) and restored.params() == recipe.params()
        np.testing.assert_array_equal(
            restored.score_context(data.matrix, context), recipe.score_context(data.matrix, context)
        )
        np.testing.assert_array_equal(restored.score(data.matrix), recipe.score(data.matrix))


def test_a_product_the_context_does_not_know_scores_as_without_context() -> None:
    """A purchase newer than the stored history (real time) is scored from the row."""
    data = training_data(coffee_buyers(), n_customers=12, n_items=3)
    recipe = BuyAgainRecipe().fit(data)
    context = history_context(data, np.array([0]))
    fresh = sparse.csr_matrix(([1.0, 1.0], ([0, 0], [0, 2])), shape=(1, 3), dtype=np.float32)
    scores = recipe.score_context(fresh, context)[0]
    assert scores[2] == pytest.approx(recipe.score(fresh)[0, 2])
    known = ScoringContext(orders=context.orders, last_bought=context.last_bought, now=NOW)
    assert scores[0] == pytest.approx(recipe.score_context(fresh, known)[0, 0])


def bundle_buyers() -> list[Line]:
    """Items 0-2 are a bundle (30 customers bought all three, twice); customer 0 bought
    items 0 and 1 often, item 3 once long ago and never the bundle's item 2."""
    lines = [(c, i, d, 1) for c in range(1, 31) for i in (0, 1, 2) for d in (20.0, 50.0)]
    lines += [(0, i, d, 1) for i in (0, 1) for d in (5.0, 12.0, 19.0, 26.0, 33.0)]
    lines += [(0, 3, 150.0, 1), (31, 3, 150.0, 1)]
    return lines


def test_a_discovery_recipe_mixed_in_can_pass_a_weak_history_product() -> None:
    data = training_data(bundle_buyers(), n_customers=32, n_items=5)
    first = context_scores(BuyAgainRecipe().fit(data), data)[0]
    assert ranking(first)[:3] == [0, 1, 3]  # history first, however weak
    mixed = BuyAgainRecipe(completion="itemknn", completion_weight=0.3).fit(data)
    scores = context_scores(mixed, data)[0]
    assert ranking(scores)[:4] == [0, 1, 2, 3]  # the bundle's third item before item 3
    # Each history product's share of the history, plus the weighted discovery score over
    # the customer's best one (and the popularity tie-break): the shares add up to 1.
    discovery = make_recipe("itemknn").fit(data).score(data.matrix[:1])[0]
    tie = BuyAgainRecipe.TIE * np.array(mixed.state()["popularity"])
    shares = scores - 0.3 * discovery / discovery.max() - tie
    assert shares[[0, 1, 3]].sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(shares[[2, 4]], 0.0, atol=1e-6)


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_a_mixed_recipe_survives_its_state(weight: float) -> None:
    data = training_data(bundle_buyers(), n_customers=32, n_items=5)
    recipe = BuyAgainRecipe(completion="itemknn", completion_weight=weight).fit(data)
    arrays = {key: np.array(value) for key, value in recipe.state().items()}
    assert any(key.startswith("completion.") for key in arrays) == (weight > 0)
    restored = BuyAgainRecipe.from_state(recipe.params(), arrays)
    np.testing.assert_array_equal(context_scores(restored, data), context_scores(recipe, data))


# ---------------------------------------------------------------- registry and choice


def test_the_grid_starts_at_the_defaults_and_both_recipes_are_registered() -> None:
    assert GRIDS["buy-again"][0] == {} and 6 <= len(GRIDS["buy-again"]) <= 10
    assert RECIPES["buy-again-count"] is BuyAgainCountRecipe
    defaults = BuyAgainRecipe().params()
    assert defaults == {
        **BuyAgainParams().as_dict(),
        "completion": "rp3beta",
        "completion_weight": 0,
    }
    for point in GRIDS["buy-again"]:
        assert point.items() <= BuyAgainRecipe(**point).params().items()


def test_select_buy_again_is_at_least_as_good_as_the_defaults(
    generated: list[Interaction],
) -> None:
    choice = select_buy_again(generated)
    assert choice.fallback is None and choice.buy_again_ndcg is not None
    lines = Lines.of(generated)
    assert lines.item_ids == choice.product_ids
    split = validation_split(lines, repeat=True)
    defaults = evaluate_recipe(BuyAgainRecipe(), split, TUNING_K).metrics.ndcg
    assert choice.buy_again_ndcg >= defaults
    assert choice.buy_again_ndcg == pytest.approx(
        evaluate_recipe(BuyAgainRecipe(**choice.params.as_dict()), split, TUNING_K).metrics.ndcg
    )
    assert choice.buy_again_count_ndcg == pytest.approx(
        evaluate_recipe(BuyAgainCountRecipe(), split, TUNING_K).metrics.ndcg
    )
    assert choice.stats.repeat_rate.shape == (len(choice.product_ids),)
    json.dumps(choice.to_metrics())


def test_select_buy_again_falls_back_to_the_defaults_on_too_little_data(
    generated: list[Interaction],
) -> None:
    few = select_buy_again(generated[:40])
    assert few.params == BuyAgainParams() and few.buy_again_ndcg is None
    assert few.fallback and "customers" in few.fallback
    assert few.stats.interval_days.shape == (len(few.product_ids),)
    none = select_buy_again([])
    assert none.fallback == "there are no order lines" and none.product_ids == []


# ---------------------------------------------------------------- mgrecs evaluate


def test_evaluate_repeat_reports_the_lift_over_buy_again_count(orders_file: Path) -> None:
    runner = CliRunner()
    args = ["evaluate", str(orders_file), "--test-days", "21", "--recipes", "buy-again"]
    repeat = json.loads(runner.invoke(app, [*args, "--json", "--repeat"]).stdout)
    names = [r["recipe"] for r in repeat["results"]]
    assert names == [*BASELINES, REPEAT_BASELINE, "buy-again"]
    assert repeat["best"] == "buy-again"
    by_name = {r["recipe"]: r for r in repeat["results"]}
    base = by_name[REPEAT_BASELINE]["metrics"]["ndcg@10"]
    for result in repeat["results"]:
        expected = (result["metrics"]["ndcg@10"] / base - 1) * 100
        assert result["vs_buy_again_count_percent"] == pytest.approx(expected, abs=0.01)
    assert (
        repeat["best_vs_buy_again_count_percent"]
        == by_name["buy-again"]["vs_buy_again_count_percent"]
    )
    assert {"best_vs_baseline_percent", "best_vs_popularity_count_percent"} <= set(repeat)

    table = runner.invoke(app, [*args, "--repeat"])
    assert "vs buy-again-count" in " ".join(table.stdout.split())
    assert "% vs buy-again-count (" in table.stdout.strip().splitlines()[-1]

    discovery = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert REPEAT_BASELINE not in [r["recipe"] for r in discovery["results"]]
    assert "best_vs_buy_again_count_percent" not in discovery


def test_the_baseline_is_never_the_best(orders_file: Path) -> None:
    """Even alone (asked for explicitly), buy-again-count is a baseline, not a winner."""
    runner = CliRunner()
    args = ["evaluate", str(orders_file), "--test-days", "21", "--json", "--repeat"]
    document = json.loads(runner.invoke(app, [*args, "--recipes", "buy-again-count,ease"]).stdout)
    assert [r["recipe"] for r in document["results"]].count(REPEAT_BASELINE) == 1
    assert document["best"] == "ease"
