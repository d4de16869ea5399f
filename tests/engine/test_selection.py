"""Choosing the user-personalization recipe on the latest purchases, on data whose best
recipe is known."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from mgrecs.engine.evaluation import Catalog, default_catalog
from mgrecs.engine.evaluation.evaluate import evaluate_recipe
from mgrecs.engine.evaluation.tuning import TUNING_K
from mgrecs.engine.model import DEFAULT_RECIPE
from mgrecs.engine.recipes import TrainingData, make_recipe
from mgrecs.engine.records import Interaction
from mgrecs.engine.selection import measure_recipe, select_recipe, validation_split

START = datetime(2026, 1, 1, tzinfo=UTC)
PAIRS = 5


def pairs_data() -> list[Interaction]:
    """Products come in pairs (a<i>, b<i>). 40 customers bought a pair early; 30 more bought
    an a<i> early and its partner b<i> at the very end, the period selection validates on."""
    lines = []
    for c in range(40):
        pair, day = c % PAIRS, 1 + c
        lines += [
            Interaction(f"full{c}", f"a{pair}", 1, START + timedelta(days=day), "north"),
            Interaction(f"full{c}", f"b{pair}", 1, START + timedelta(days=day), "north"),
        ]
    for c in range(30):
        pair = c % PAIRS
        lines += [
            Interaction(f"late{c}", f"a{pair}", 1, START + timedelta(days=10 + c), "north"),
            Interaction(f"late{c}", f"b{pair}", 1, START + timedelta(days=99, hours=c), "north"),
        ]
    return lines


class PartnerRecipe:
    """A toy recipe that learns nothing: a<i> (column i) points at b<i+shift>, b<i> (column
    PAIRS + i) at a<i+shift>. Only shift 0 names the real partner."""

    name: ClassVar[str] = "partner"

    def __init__(self, *, shift: int = 0) -> None:
        self.shift = shift

    def params(self) -> dict[str, Any]:
        return {"shift": self.shift}

    def fit(self, data: TrainingData) -> "PartnerRecipe":
        assert data.n_items == 2 * PAIRS
        return self

    def score(self, rows: sparse.csr_matrix) -> np.ndarray:
        source = np.arange(2 * PAIRS)
        target = (source + PAIRS + self.shift) % PAIRS + np.where(source < PAIRS, PAIRS, 0)
        points = sparse.csr_matrix(
            (np.ones(2 * PAIRS, np.float32), (source, target)), shape=(2 * PAIRS, 2 * PAIRS)
        )
        return np.asarray((rows @ points).toarray(), dtype=np.float32)


def toy_catalog() -> Catalog:
    """ "partner" tunes its shift (the right one second), "shifted" is always wrong."""

    def make(name: str, params: dict[str, Any], seed: int) -> Any:
        if name in ("partner", "shifted"):
            return PartnerRecipe(**params)
        return make_recipe(name, **params)

    grids = {"partner": [{"shift": 1}, {"shift": 0}], "shifted": [{"shift": 2}]}
    return Catalog(make, grids, ["partner", "shifted", "popularity", DEFAULT_RECIPE])


def test_the_recipe_and_parameters_that_predict_the_latest_purchases_win() -> None:
    selection = select_recipe(pairs_data(), ["shifted", "partner"], 10.0, catalog=toy_catalog())
    assert selection.fallback is None
    assert selection.recipe.params() == {"shift": 0}
    shifted, partner = selection.candidates
    assert (partner.name, partner.params, partner.ndcg, partner.trials) == (
        "partner",
        {"shift": 0},
        1.0,
        2,
    )
    assert (shifted.name, shifted.params) == ("shifted", {"shift": 2})
    assert shifted.ndcg < 0.5  # b<i> only by chance among the unscored items
    validation = selection.validation
    assert validation is not None and validation["users"] == 30
    assert validation["chosen"]["ndcg@10"] == 1.0
    assert validation["chosen"]["precision@10"] == 0.1  # one right answer in ten slots
    assert validation["popularity"]["ndcg@10"] < 1.0
    metrics = json.loads(json.dumps(selection.to_metrics()))
    assert metrics["recipe"] == "partner" and metrics["params"] == {"shift": 0}
    assert metrics["validation"]["chosen"]["mrr"] == 1.0


def test_real_recipes_beat_popularity_on_the_pairs() -> None:
    selection = select_recipe(pairs_data(), ["rp3beta", "itemknn"], 10.0)
    assert selection.recipe.name in ("rp3beta", "itemknn")
    validation = selection.validation
    assert validation is not None
    assert validation["chosen"]["ndcg@10"] == 1.0  # b<i> is a<i>'s only co-purchase
    assert validation["popularity"]["ndcg@10"] < validation["chosen"]["ndcg@10"]


def test_too_little_data_falls_back_to_the_default_recipe() -> None:
    lines = pairs_data()[:20]  # ten customers
    selection = select_recipe(lines, ["als", "ease"], 10.0, catalog=default_catalog())
    assert selection.recipe.name == DEFAULT_RECIPE
    assert selection.recipe.params() == make_recipe(DEFAULT_RECIPE).params()
    assert selection.candidates == [] and selection.validation is None
    assert selection.fallback is not None and "customers" in selection.fallback
    assert select_recipe([], ["als"], 1.0).fallback == "there are no order lines"


def test_unknown_candidates_are_refused() -> None:
    try:
        select_recipe(pairs_data(), ["nope"], 1.0)
    except ValueError as error:
        assert "nope" in str(error)
    else:
        raise AssertionError("an unknown recipe was accepted")


def test_same_data_same_seed_same_model() -> None:
    """Two retrains on the same purchases (the generator's, with ALS among the candidates:
    it is the seeded one) choose the same recipe and give identical recommendations."""
    from mgrecs.engine.model import RecommenderModel
    from mgrecs.ingest.sample_data import generate

    data = generate(seed=3, customers=300, products=80, orders=2500, anchor=START)
    interactions = [
        Interaction(
            o.customer.customer_id, line.product_id, line.quantity, o.ordered_at, o.customer.region
        )
        for o in data.orders
        for line in o.lines
    ]
    runs = []
    for _ in range(2):
        selection = select_recipe(interactions, ["als", "rp3beta"], budget_seconds=600)
        model = RecommenderModel.fit(interactions, recipe=selection.recipe)
        runs.append((selection.to_metrics(), model.recommend_all(10)))
    (first_metrics, first_recs), (second_metrics, second_recs) = runs
    assert first_metrics["selection"]["fallback"] is None
    for metrics in (first_metrics, second_metrics):
        metrics["selection"]["seconds"] = 0.0  # the only thing allowed to differ
    assert first_metrics == second_metrics
    assert first_recs == second_recs


def test_a_measured_recipe_keeps_its_parameters_and_is_validated_like_a_chosen_one() -> None:
    """What a refresh does: the active recipe as it is (even a wrong shift), no search."""
    measured = measure_recipe(pairs_data(), "partner", {"shift": 1}, catalog=toy_catalog())
    assert measured.recipe.params() == {"shift": 1}
    assert measured.candidates == [] and measured.fallback is None
    validation = measured.validation
    assert validation is not None and validation["users"] == 30
    assert validation["chosen"]["ndcg@10"] < 1.0  # the wrong partner, measured as such
    assert set(validation["popularity"]) == set(validation["chosen"])
    few = measure_recipe(pairs_data()[:20], "rp3beta", {"beta": 0.3})
    assert few.validation is None and few.fallback is not None
    assert (few.recipe.name, few.recipe.params()["beta"]) == ("rp3beta", 0.3)


def test_the_chosen_recipes_validation_is_its_tuning_measurement() -> None:
    """The chosen recipe is not fitted again to report it: its tuning trial's metrics are
    those a fresh fit on the validation period gives (and the same for a measured one)."""
    data = pairs_data()
    selection = select_recipe(data, ["partner", DEFAULT_RECIPE], 60, catalog=toy_catalog())
    assert selection.validation is not None
    assert selection.recipe.params() == {"shift": 0}
    for recipe in (PartnerRecipe(shift=0), make_recipe(DEFAULT_RECIPE)):
        fresh = evaluate_recipe(recipe, validation_split(data), TUNING_K).metrics
        measured = measure_recipe(data, recipe.name, recipe.params(), catalog=toy_catalog())
        assert measured.validation is not None
        expected = {name: round(value, 6) for name, value in fresh.as_dict().items()}
        assert measured.validation["chosen"] == expected
        if recipe.name == "partner":
            assert selection.validation["chosen"] == expected
