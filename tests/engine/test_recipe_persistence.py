"""Every recipe's fitted state survives a trip through an .npz (no pickle) and scores
exactly as before, without refitting."""

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from mgrecs.engine.dataset import build_dataset
from mgrecs.engine.recipes import RECIPES, Recipe, TrainingData, make_recipe
from support.samples import sample_lines

SMALL_PARAMS = {
    "ease": {"l2": 50.0},
    "als": {"factors": 8, "iterations": 5},
    "popularity": {"half_life_days": 30.0},  # the time-decayed variant keeps the most state
    "rp3beta": {"history_idf": 0.5, "profile_weight": 1.0},  # history weights, W with profiles
}


@pytest.fixture(scope="module")
def data() -> TrainingData:
    dataset = build_dataset(sample_lines(seed=3, customers=150, products=60, orders=900))
    return TrainingData(
        matrix=dataset.matrix.astype(np.float32),
        line_customer=dataset.line_customer,
        line_item=dataset.line_item,
        line_time=dataset.line_time,
        customer_region=dataset.customer_region,
        now=float(dataset.line_time.max()),
    )


def through_npz(recipe: Recipe, path: Path) -> Recipe:
    """Save the state as a model file would, load it with pickle disabled, rebuild."""
    np.savez_compressed(path, **recipe.state())
    with np.load(path, allow_pickle=False) as arrays:
        stored = {key: arrays[key] for key in arrays.files}
    return RECIPES[recipe.name].from_state(recipe.params(), stored)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_restored_recipe_scores_exactly_like_the_fitted_one(
    name: str, data: TrainingData, tmp_path: Path
) -> None:
    recipe = make_recipe(name, **SMALL_PARAMS.get(name, {})).fit(data)
    restored = through_npz(recipe, tmp_path / f"{name}.npz")

    assert type(restored) is type(recipe)
    assert restored.params() == recipe.params()
    rows = data.matrix[:40]
    fresh = sparse.csr_matrix(  # a customer not in training (real-time fold-in)
        (np.array([1.0, 0.7], np.float32), np.array([3, 11]), np.array([0, 2])),
        shape=(1, data.n_items),
    )
    for batch in (rows, fresh, data.matrix[:0]):
        original = recipe.score(batch)
        again = restored.score(batch)
        assert again.dtype == original.dtype
        np.testing.assert_array_equal(again, original)
    assert np.any(recipe.score(rows) != 0)  # the comparison is not between empty scores


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_an_unfitted_recipe_has_no_state(name: str) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        make_recipe(name).state()


def test_als_scores_a_customer_alone_exactly_as_in_a_batch(data: TrainingData) -> None:
    """Real time scores one row, batch inference many: the numbers must be the same."""
    recipe = make_recipe("als", factors=8, iterations=5).fit(data)
    rows = data.matrix[:30]
    together = recipe.score(rows)
    alone = np.vstack([recipe.score(rows[n : n + 1]) for n in range(rows.shape[0])])
    np.testing.assert_array_equal(alone, together)
