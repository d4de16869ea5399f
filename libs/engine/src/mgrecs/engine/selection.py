"""Choose the user-personalization recipe of a new model: the candidate (and hyper-parameters)
with the best NDCG@10 on the most recent purchases.

The validation period is the end of the data the model will be trained on (the last
VALIDATION_FRACTION of its time span): each candidate's grid is tuned on it (the evaluation
package's `tune`), the best candidate is measured once more in full next to popularity on
the same period, and the model is then fitted on everything. Rows are binary, as the model
scores them. With too little data for a validation period the default recipe is taken as is.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mgrecs.engine.dataset import Lines, binarize
from mgrecs.engine.evaluation.evaluate import evaluate_recipe
from mgrecs.engine.evaluation.metrics import Metrics
from mgrecs.engine.evaluation.report import Catalog, default_catalog
from mgrecs.engine.evaluation.split import VALIDATION_FRACTION, InsufficientData, Split, time_split
from mgrecs.engine.evaluation.tuning import TUNING_K, tune
from mgrecs.engine.model import DEFAULT_RECIPE
from mgrecs.engine.recipes.base import Recipe
from mgrecs.engine.records import Interaction

BASELINE = "popularity"
"""Measured on the same validation period, for the promotion gate to compare against."""
SEED = 42
"""Seed of the seeded recipes (ALS), so a retrain on the same data gives the same model."""


@dataclass(frozen=True)
class Candidate:
    """One candidate recipe after tuning: its best parameters and their validation NDCG@10."""

    name: str
    params: dict[str, Any]
    ndcg: float
    trials: int
    budget_exhausted: bool
    metrics: Metrics | None = field(default=None, repr=False)
    """Its full metrics on the validation period, kept to report the chosen one unfitted."""


@dataclass(frozen=True)
class Selection:
    """The chosen recipe (a new, unfitted instance) and the evidence for it."""

    recipe: Recipe
    candidates: list[Candidate]
    validation: dict[str, Any] | None
    """The validation period and `{"chosen": metrics, "popularity": metrics}`; None when
    the default was taken for lack of data."""
    fallback: str | None = None
    """Why no selection was run (the InsufficientData message), or None."""
    seconds: float = 0.0

    def to_metrics(self) -> dict[str, Any]:
        """JSON for `model_versions.metrics`."""
        return {
            "recipe": self.recipe.name,
            "params": self.recipe.params(),
            "selection": {
                "fallback": self.fallback,
                "seconds": round(self.seconds, 3),
                "candidates": [
                    {
                        "recipe": c.name,
                        "params": c.params,
                        "validation_ndcg@10": c.ndcg,
                        "trials": c.trials,
                        "budget_exhausted": c.budget_exhausted,
                    }
                    for c in self.candidates
                ],
            },
            "validation": self.validation,
        }


def validation_split(interactions: Sequence[Interaction] | Lines) -> Split:
    """The last VALIDATION_FRACTION of the time span as truth, the rest as training (binary
    rows); raises InsufficientData when that leaves too little."""
    if not len(interactions):
        raise InsufficientData("there are no order lines")
    lines = Lines.of(interactions)
    first, last = float(lines.time.min()), float(lines.time.max())
    boundary = datetime.fromtimestamp(last - (last - first) * VALIDATION_FRACTION, tz=UTC)
    split = time_split(lines, test_from=boundary, validation_fraction=0)
    binary = binarize(split.train.matrix).astype(np.float32)
    return replace(split, train=replace(split.train, matrix=binary))


def select_recipe(
    interactions: Sequence[Interaction] | Lines,
    candidates: Sequence[str],
    budget_seconds: float,
    *,
    default: str = DEFAULT_RECIPE,
    catalog: Catalog | None = None,
) -> Selection:
    """The candidate with the best validation NDCG@10 (earliest on ties), or `default` with
    its default parameters when there is too little data for a validation period.

    `budget_seconds` is shared equally by the candidates; each one tries at least its first
    grid point (its defaults), so a slow recipe can overrun its share once.
    """
    catalog = catalog or default_catalog()
    unknown = [name for name in [*candidates, default, BASELINE] if name not in catalog.names]
    if unknown or not candidates:
        raise ValueError(
            f"candidates must be known recipes; unknown: {', '.join(unknown) or 'none given'}"
        )
    started = time.perf_counter()
    try:
        split = validation_split(interactions)
    except InsufficientData as error:
        return Selection(
            recipe=catalog.make(default, {}, SEED),
            candidates=[],
            validation=None,
            fallback=str(error),
            seconds=time.perf_counter() - started,
        )

    share = budget_seconds / len(candidates)
    tuned: list[Candidate] = []
    for name in dict.fromkeys(candidates):

        def make(params: dict[str, Any], name: str = name) -> Recipe:
            return catalog.make(name, params, SEED)

        tuning = tune(make, catalog.grids.get(name, [{}]), split, share)
        metrics = tuning.metrics
        if metrics is None:  # one grid point: tune took it without measuring
            metrics = evaluate_recipe(make(tuning.params), split, TUNING_K).metrics
        tuned.append(
            Candidate(
                name,
                tuning.params,
                metrics.ndcg,
                len(tuning.trials),
                tuning.budget_exhausted,
                metrics,
            )
        )
    best = max(tuned, key=lambda candidate: candidate.ndcg)  # max keeps the first of equals

    return Selection(
        recipe=catalog.make(best.name, best.params, SEED),
        candidates=tuned,
        validation=_validation(catalog, best.name, best.params, split, best.metrics),
        seconds=time.perf_counter() - started,
    )


def measure_recipe(
    interactions: Sequence[Interaction] | Lines,
    name: str,
    params: dict[str, Any],
    *,
    catalog: Catalog | None = None,
) -> Selection:
    """Recipe `name` with `params` as they are (no search), measured next to popularity on
    the most recent purchases like a selected one: a refresh keeps the active recipe, and
    the promotion gate still needs that evidence."""
    catalog = catalog or default_catalog()
    if name not in catalog.names:
        raise ValueError(f"unknown recipe {name!r}")
    started = time.perf_counter()
    validation: dict[str, Any] | None = None
    fallback: str | None = None
    try:
        validation = _validation(catalog, name, params, validation_split(interactions))
    except InsufficientData as error:
        fallback = str(error)
    return Selection(
        recipe=catalog.make(name, params, SEED),
        candidates=[],
        validation=validation,
        fallback=fallback,
        seconds=time.perf_counter() - started,
    )


def _validation(
    catalog: Catalog,
    name: str,
    params: dict[str, Any],
    split: Split,
    chosen: Metrics | None = None,
) -> dict[str, Any]:
    """The validation period and the recipe's and popularity's metrics on it (`chosen`: the
    recipe's, when its tuning already measured them: recipes are seeded, so a second fit
    would give the same)."""
    if chosen is None:
        chosen = evaluate_recipe(catalog.make(name, params, SEED), split, TUNING_K).metrics
    baseline = evaluate_recipe(catalog.make(BASELINE, {}, SEED), split, TUNING_K)
    return {
        "train_from": split.train_from.isoformat(),
        "validation_from": split.test_from.isoformat(),
        "validation_to": split.test_to.isoformat(),
        "users": int(split.users.size),
        "chosen": _metrics(chosen),
        BASELINE: _metrics(baseline.metrics),
    }


def _metrics(metrics: Metrics) -> dict[str, float | int]:
    return {name: round(value, 6) for name, value in metrics.as_dict().items()}
