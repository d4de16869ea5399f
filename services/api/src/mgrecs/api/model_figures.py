"""A model version's headline offline figures, whatever the shape its `metrics` were stored
in: a trained version keeps them under `validation.chosen` (the chosen recipe on the
validation period, next to popularity's), an AWS version has Personalize's solution metrics,
an older or hand-registered row may have them flat (`{"ndcg@10": 0.21}`)."""

import math
from typing import Any

FIGURES = ("precision@10", "recall@10", "ndcg@10", "mrr", "coverage")
"""The figures a dashboard or report shows, in this order."""

PERSONALIZE = {
    "precision_at_10": "precision@10",
    "normalized_discounted_cumulative_gain_at_10": "ndcg@10",
    "mean_reciprocal_rank_at_25": "mrr",
    "coverage": "coverage",
}
"""Personalize's solution metric names, as FIGURES names them (it has no recall)."""


def _numbers(values: Any, names: dict[str, str]) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {figure: float(values[key]) for key, figure in names.items() if _finite(values.get(key))}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def offline_figures(metrics: Any) -> dict[str, float]:
    """`metrics`' FIGURES that are numbers (none: empty): the validation's chosen recipe's,
    else Personalize's solution metrics, else the flat keys."""
    if not isinstance(metrics, dict):
        return {}
    same = {name: name for name in FIGURES}
    validation = metrics.get("validation")
    if isinstance(validation, dict) and isinstance(validation.get("chosen"), dict):
        return _numbers(validation["chosen"], same)
    if isinstance(metrics.get("solution_metrics"), dict):
        return _numbers(metrics["solution_metrics"], PERSONALIZE)
    return _numbers(metrics, same)
