"""Honest, repeatable offline evaluation: time split, tuning on validation, top-k metrics."""

from mgrecs.engine.evaluation.evaluate import RecipeReport, Trial, evaluate_recipe
from mgrecs.engine.evaluation.metrics import Metrics, ranking_metrics
from mgrecs.engine.evaluation.report import (
    BASELINES,
    REPEAT_BASELINE,
    Catalog,
    EvaluationReport,
    baselines,
    default_catalog,
    evaluate_all,
)
from mgrecs.engine.evaluation.split import InsufficientData, Split, time_split
from mgrecs.engine.evaluation.tuning import Tuning, tune

__all__ = [
    "BASELINES",
    "REPEAT_BASELINE",
    "Catalog",
    "EvaluationReport",
    "InsufficientData",
    "Metrics",
    "RecipeReport",
    "Split",
    "Trial",
    "Tuning",
    "baselines",
    "default_catalog",
    "evaluate_all",
    "evaluate_recipe",
    "ranking_metrics",
    "time_split",
    "tune",
]
