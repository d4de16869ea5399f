"""A model version's headline figures out of its stored metrics, in each stored shape."""

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mgrecs.api.model_figures import FIGURES, offline_figures


def test_a_trained_version_has_its_chosen_recipes_figures() -> None:
    metrics = {
        "recipe": "cooccurrence",
        "params": {"k": 10},
        "validation": {
            "users": 40,
            "chosen": {
                "precision@10": 0.1,
                "recall@10": 0.3,
                "ndcg@10": 0.25,
                "mrr": 0.2,
                "coverage": 0.5,
                "users": 40,
            },
            "popularity": {"ndcg@10": 0.12},
        },
    }
    assert offline_figures(metrics) == {
        "precision@10": 0.1,
        "recall@10": 0.3,
        "ndcg@10": 0.25,
        "mrr": 0.2,
        "coverage": 0.5,
    }


def test_a_version_without_a_validation_period_has_none() -> None:
    assert offline_figures({"recipe": "cooccurrence", "validation": None}) == {}
    assert offline_figures({}) == {}
    assert offline_figures(None) == {}


def test_an_aws_version_has_personalizes_figures() -> None:
    metrics = {
        "mode": "aws",
        "solution_metrics": {
            "coverage": 0.3,
            "precision_at_10": 0.04,
            "normalized_discounted_cumulative_gain_at_10": 0.19,
            "mean_reciprocal_rank_at_25": 0.11,
            "precision_at_25": 0.02,
        },
    }
    assert offline_figures(metrics) == {
        "precision@10": 0.04,
        "ndcg@10": 0.19,
        "mrr": 0.11,
        "coverage": 0.3,
    }


def test_flat_figures_are_kept_and_non_numbers_left_out() -> None:
    metrics = {"ndcg@10": 0.2, "coverage": 1, "recall@10": "n/a", "precision@10": True}
    assert offline_figures(metrics) == {"ndcg@10": 0.2, "coverage": 1.0}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*FIGURES, "validation", "chosen", "solution_metrics", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(json_values)
def test_any_stored_metrics_give_finite_named_figures(metrics: Any) -> None:
    figures = offline_figures(metrics)
    assert set(figures) <= set(FIGURES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in figures.values())
