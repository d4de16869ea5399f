"""Choose the user-personalization recipe of a new model: the candidate (and hyper-parameters)
with the best NDCG@10 on the most recent purchases, a blend when that is clearly better,
and never a recipe that does worse than popularity there.

The validation period is the end of the data the model will be trained on (the last
VALIDATION_FRACTION of its time span): each candidate's grid is tuned on it (the evaluation
package's `tune`), and so are the non-personal baselines (popularity, trending, regional
popularity). A blend of the best candidates with the baselines then gets its weights on the
same period (`blending.tune_blend`) and is measured in full; it serves only when it beats
the better of the best candidate and popularity by `blending.MIN_GAIN`. Whatever wins
must reach tuned popularity's NDCG@10, or popularity serves: a new model never loses to
the simplest baseline on the latest purchases. The model is then fitted on everything.
Rows are binary, as the model scores them. With too little
data for a validation period the default recipe is taken as is.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from mgrecs.engine.dataset import Lines
from mgrecs.engine.evaluation.blending import (
    BLEND,
    MIN_GAIN,
    blend_pool,
    blend_wins,
    tune_blend,
)
from mgrecs.engine.evaluation.evaluate import evaluate_recipe
from mgrecs.engine.evaluation.margin_curve import curve_of_fitted
from mgrecs.engine.evaluation.metrics import Metrics
from mgrecs.engine.evaluation.report import Catalog, default_catalog
from mgrecs.engine.evaluation.split import (
    VALIDATION_FRACTION,
    InsufficientData,
    Split,
    time_split,
    with_binary_rows,
)
from mgrecs.engine.evaluation.tuning import TUNING_K, tune
from mgrecs.engine.model import DEFAULT_RECIPE
from mgrecs.engine.recipes.base import Recipe
from mgrecs.engine.recipes.blend import BlendRecipe
from mgrecs.engine.records import Interaction

BASELINE = "popularity"
"""Measured on the same validation period, for the promotion gate to compare against; the
floor the served recipe must reach."""
SELECTION_BASELINES = ("popularity", "trending", "regional-popularity")
"""Tuned at every selection next to the candidates: the floor, and what a blend may add."""
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
    fitted: Recipe | None = field(default=None, repr=False, compare=False)
    """Its tuned recipe as fitted on the validation split's training part, for the blend."""


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
    baselines: list[Candidate] = field(default_factory=list)
    """The non-personal recipes tuned next to the candidates (popularity: the floor)."""
    blend: Candidate | None = None
    """The blend tuned over the best candidates and the baselines, measured in full."""
    reason: str = ""
    """Why the served recipe serves, in a sentence."""
    margin_curve: dict[str, Any] | None = None
    """The chosen recipe's margin against relevance on the validation period
    (`mgrecs.engine.evaluation.margin_curve`), when margins were given."""

    def to_metrics(self) -> dict[str, Any]:
        """JSON for `model_versions.metrics`."""
        return {
            "recipe": self.recipe.name,
            "params": self.recipe.params(),
            "selection": {
                "fallback": self.fallback,
                "seconds": round(self.seconds, 3),
                "candidates": [_candidate(c) for c in self.candidates],
                "baselines": [_candidate(c) for c in self.baselines],
                "blend": None if self.blend is None else _candidate(self.blend),
                "reason": self.reason,
            },
            "validation": self.validation,
            **({"margin_curve": self.margin_curve} if self.margin_curve is not None else {}),
        }


def _candidate(candidate: Candidate) -> dict[str, Any]:
    return {
        "recipe": candidate.name,
        "params": candidate.params,
        "validation_ndcg@10": candidate.ndcg,
        "trials": candidate.trials,
        "budget_exhausted": candidate.budget_exhausted,
    }


def validation_split(interactions: Sequence[Interaction] | Lines, repeat: bool = False) -> Split:
    """The last VALIDATION_FRACTION of the time span as truth, the rest as training (binary
    rows; `repeat`: re-bought products count as right answers); raises InsufficientData when
    that leaves too little."""
    if not len(interactions):
        raise InsufficientData("there are no order lines")
    lines = Lines.of(interactions)
    first, last = float(lines.time.min()), float(lines.time.max())
    boundary = datetime.fromtimestamp(last - (last - first) * VALIDATION_FRACTION, tz=UTC)
    return with_binary_rows(
        time_split(lines, test_from=boundary, validation_fraction=0, repeat=repeat)
    )


def select_recipe(
    interactions: Sequence[Interaction] | Lines,
    candidates: Sequence[str],
    budget_seconds: float,
    *,
    default: str = DEFAULT_RECIPE,
    catalog: Catalog | None = None,
    repeat: bool = False,
    margins: Mapping[str, float] | None = None,
) -> Selection:
    """The candidate with the best validation NDCG@10 (earliest on ties), popularity when
    that is below it, the blend when it beats either by `MIN_GAIN`; `default` with its default
    parameters when there is too little data for a validation period. `repeat`: purchased
    products stay in the lists (the model's exclude-purchased setting off), so re-buying
    counts and `buy-again` may join the blend. `margins` (per product, price - cost): the
    chosen recipe's margin curve is measured on the validation period too.

    `budget_seconds` is shared equally by the candidates and the blend (the baselines take a
    share each too, but fit in well under a second); each recipe tries at least its first
    grid point (its defaults), so a slow recipe can overrun its share once, and the blend
    fits each of its components once whatever its share.
    """
    catalog = catalog or default_catalog()
    unknown = [name for name in [*candidates, default, BASELINE] if name not in catalog.names]
    if unknown or not candidates:
        raise ValueError(
            f"candidates must be known recipes; unknown: {', '.join(unknown) or 'none given'}"
        )
    started = time.perf_counter()
    try:
        split = validation_split(interactions, repeat)
    except InsufficientData as error:
        return Selection(
            recipe=catalog.make(default, {}, SEED),
            candidates=[],
            validation=None,
            fallback=str(error),
            seconds=time.perf_counter() - started,
            reason="too little data for a validation period: the default recipe",
        )

    names = list(dict.fromkeys(candidates))
    baselines = [n for n in SELECTION_BASELINES if n in catalog.names and n not in names]
    blending = BLEND in catalog.names and BLEND not in names
    share = budget_seconds / (len(names) + int(blending))
    tuned = [_tuned(catalog, name, split, share) for name in names]
    floor = [_tuned(catalog, name, split, share) for name in baselines]
    best = max(tuned, key=lambda candidate: candidate.ndcg)  # max keeps the first of equals
    chosen, reason = best, "the best candidate on validation"

    blend = None
    pool = blend_pool(
        [(c.name, catalog.make(c.name, c.params, SEED).params(), c.ndcg) for c in [*tuned, *floor]],
        repeat,
    )
    if blending and len(pool) > 1:
        fitted = {c.name: c.fitted for c in [*tuned, *floor]}
        blend = _blend(catalog, pool, [fitted.get(name) for name, _ in pool], split, share)
    popularity = next(c for c in [*tuned, *floor] if c.name == BASELINE)
    if chosen.ndcg < popularity.ndcg:
        chosen, reason = popularity, f"{chosen.name} is below popularity on validation"
    if (
        blend is not None
        and len(blend.params["components"]) > 1
        and blend_wins(blend.ndcg, chosen.ndcg)
    ):
        chosen, reason = blend, f"the blend beats {chosen.name} by {MIN_GAIN:.0%} or more"

    curve = None
    if margins:
        measured = chosen.fitted
        if measured is None:
            measured = catalog.make(chosen.name, chosen.params, SEED)
            measured.fit(split.train)
        curve = curve_of_fitted(measured, split, margins, TUNING_K, name=chosen.name).to_dict()
    return Selection(
        recipe=catalog.make(chosen.name, chosen.params, SEED),
        margin_curve=curve,
        candidates=[replace(c, fitted=None) for c in tuned],  # not kept through the final fit
        validation=_validation(
            catalog, chosen.name, chosen.params, split, chosen.metrics, popularity
        ),
        seconds=time.perf_counter() - started,
        baselines=[replace(c, fitted=None) for c in floor],
        blend=blend,
        reason=reason,
    )


def _tuned(catalog: Catalog, name: str, split: Split, budget_seconds: float) -> Candidate:
    """Recipe `name` with its grid tuned on the validation split, and its metrics there."""

    def make(params: dict[str, Any]) -> Recipe:
        return catalog.make(name, params, SEED)

    tuning = tune(make, catalog.grids.get(name, [{}]), split, budget_seconds)
    metrics, recipe = tuning.metrics, tuning.recipe
    if metrics is None or recipe is None:  # one grid point: tune took it without measuring
        recipe = make(tuning.params)
        metrics = evaluate_recipe(recipe, split, TUNING_K).metrics
    return Candidate(
        name,
        tuning.params,
        metrics.ndcg,
        len(tuning.trials),
        tuning.budget_exhausted,
        metrics,
        recipe,
    )


def _blend(
    catalog: Catalog,
    pool: list[tuple[str, dict[str, Any]]],
    fitted: list[Recipe | None],
    split: Split,
    budget_seconds: float,
) -> Candidate:
    """The blend of `pool` with weights tuned on the validation split, then measured there
    in full like any candidate (the weights' search works on cached scores). The components
    are fitted once: as their tuning left them (`fitted`, per pool member), else by the
    weights' search. A blend of one component ranks as that component does: its cached
    figures stand."""

    def make(name: str, params: dict[str, Any]) -> Recipe:
        return catalog.make(name, params, SEED)

    tuning = tune_blend(pool, split, make, budget_seconds=budget_seconds, seed=SEED, fitted=fitted)
    metrics = tuning.metrics
    if len(tuning.params["components"]) > 1:
        kept = [n for n, weight in enumerate(tuning.weights) if weight > 0]
        blend = catalog.make(BLEND, tuning.params, SEED)
        assert isinstance(blend, BlendRecipe)
        blend.with_fitted(
            [tuning.recipes[n] for n in kept], [tuning.scales[n] for n in kept], split.train.n_items
        )
        metrics = evaluate_recipe(blend, split, TUNING_K, fitted=True).metrics
    return Candidate(
        BLEND, tuning.params, metrics.ndcg, len(tuning.trials), tuning.budget_exhausted, metrics
    )


def measure_recipe(
    interactions: Sequence[Interaction] | Lines,
    name: str,
    params: dict[str, Any],
    *,
    catalog: Catalog | None = None,
    repeat: bool = False,
) -> Selection:
    """Recipe `name` with `params` as they are (no search), measured next to popularity on
    the most recent purchases like a selected one (`repeat` as `select_recipe`'s: the same
    period): a refresh keeps the active recipe, and the promotion gate still needs that
    evidence; the gate measures the active recipe on a new version's period too."""
    catalog = catalog or default_catalog()
    if name not in catalog.names:
        raise ValueError(f"unknown recipe {name!r}")
    started = time.perf_counter()
    validation: dict[str, Any] | None = None
    fallback: str | None = None
    try:
        validation = _validation(catalog, name, params, validation_split(interactions, repeat))
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
    popularity: Candidate | None = None,
) -> dict[str, Any]:
    """The validation period and the recipe's and popularity's metrics on it (`chosen`: the
    recipe's, when its tuning already measured them: recipes are seeded, so a second fit
    would give the same; `popularity`: tuned popularity, else its defaults are measured)."""
    if chosen is None:
        chosen = evaluate_recipe(catalog.make(name, params, SEED), split, TUNING_K).metrics
    if popularity is None or popularity.metrics is None:
        baseline = evaluate_recipe(catalog.make(BASELINE, {}, SEED), split, TUNING_K).metrics
        baseline_params: dict[str, Any] = {}
    else:
        baseline, baseline_params = popularity.metrics, popularity.params
    return {
        "train_from": split.train_from.isoformat(),
        "validation_from": split.test_from.isoformat(),
        "validation_to": split.test_to.isoformat(),
        "users": int(split.users.size),
        "chosen": _metrics(chosen),
        BASELINE: _metrics(baseline),
        f"{BASELINE}_params": baseline_params,
    }


def _metrics(metrics: Metrics) -> dict[str, float | int]:
    return {name: round(value, 6) for name, value in metrics.as_dict().items()}
