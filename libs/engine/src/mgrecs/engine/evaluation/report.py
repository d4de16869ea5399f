"""Evaluate several recipes and the popularity baselines on one time split, honestly.

Each recipe's hyper-parameters are chosen on the validation split (end of the training
period), then it is refitted on the whole training period and measured once on the test
period, so the reported figures are what a newly trained model would do next. A `blend`
comes last: its components are the other recipes as tuned (`blending.blend_pool`), its
weights are chosen on the same validation split, and it is refitted and tested like them.
"""

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mgrecs.engine.evaluation.blending import BLEND, blend_pool, blend_wins, tune_blend
from mgrecs.engine.evaluation.evaluate import RecipeReport, Trial, evaluate_recipe
from mgrecs.engine.evaluation.split import Split, time_split, with_binary_rows
from mgrecs.engine.evaluation.tuning import tune
from mgrecs.engine.recipes.base import Recipe
from mgrecs.engine.records import Interaction

BASELINES = ("popularity-count", "popularity", "trending", "regional-popularity")
"""Always evaluated, never the report's `best` (none is personal). `popularity-count` is the
old pipeline's baseline; `popularity` (its half-life tuned on validation, so at least as
good on recent purchases) the stricter one that the report's lift is measured against."""
COUNT_BASELINE = "popularity-count"
REPEAT_BASELINE = "buy-again-count"
"""Also evaluated in repeat mode (only there: with purchases excluded it is popularity): a
customer's own products by distinct orders, then recent popularity. Every recipe's lift
over it is reported, so a buy-again formula has to beat counting orders."""


def baselines(repeat: bool) -> tuple[str, ...]:
    """The baselines evaluated in a mode, first in every report."""
    return (*BASELINES, REPEAT_BASELINE) if repeat else BASELINES


ProgressFn = Callable[[int, int, str], None]
"""(recipes done, recipes in all, what is running now)."""


@dataclass(frozen=True)
class Catalog:
    """Where recipes come from: `make(name, params, seed)` and each recipe's grid."""

    make: Callable[[str, dict[str, Any], int], Recipe]
    grids: Mapping[str, Sequence[Mapping[str, Any]]]
    names: Sequence[str]


def default_catalog() -> Catalog:
    """The registry of `mgrecs.engine.recipes`; seeded recipes get the run's seed."""
    from mgrecs.engine.recipes import GRIDS, RECIPES, make_recipe

    def make(name: str, params: dict[str, Any], seed: int) -> Recipe:
        accepted = inspect.signature(RECIPES[name]).parameters
        seeded = {"random_state": seed} if "random_state" in accepted else {}
        return make_recipe(name, **{**seeded, **params})

    return Catalog(make, GRIDS, list(RECIPES))


@dataclass(frozen=True)
class EvaluationReport:
    """Every recipe's test figures, and which personalised recipe won by how much."""

    split: Split
    results: list[RecipeReport]
    k: int
    seed: int
    budget_seconds: float
    baseline: str = "popularity"

    def result(self, name: str) -> RecipeReport:
        return next(r for r in self.results if r.recipe == name)

    @property
    def best(self) -> RecipeReport:
        """Highest NDCG@k among the personalised recipes (all recipes if there are none)."""
        skip = baselines(self.split.repeat)
        personal = [r for r in self.results if r.recipe not in skip] or self.results
        return max(personal, key=lambda r: r.metrics.ndcg)

    @property
    def served(self) -> RecipeReport:
        """What a retrain on the training period would serve: the best validation NDCG@k
        among the recipes retrain considers (not the count baselines; the earlier of
        equals), the blend only when it beats that by `blending.MIN_GAIN`."""
        considered = [
            r
            for r in self.results
            if r.recipe not in (COUNT_BASELINE, REPEAT_BASELINE, BLEND) and r.trials
        ]
        if not considered:
            return self.best
        single = max(considered, key=_validation_ndcg)
        blends = [r for r in self.results if r.recipe == BLEND and r.trials]
        if blends and blend_wins(_validation_ndcg(blends[0]), _validation_ndcg(single)):
            return blends[0]
        return single

    @property
    def best_single(self) -> RecipeReport:
        """Highest NDCG@k among the personalised recipes other than the blend."""
        skip = (*baselines(self.split.repeat), BLEND)
        singles = [r for r in self.results if r.recipe not in skip] or self.results
        return max(singles, key=lambda r: r.metrics.ndcg)

    @property
    def lift_percent(self) -> float | None:
        """How much better the best recipe's NDCG@k is than the baseline's, in %."""
        return self.lift_over(self.baseline)

    def lift_over(self, baseline: str, recipe: str | None = None) -> float | None:
        """How much better `recipe`'s (default: the best's) NDCG@k is than `baseline`'s, in
        %; None when the baseline scored 0 or was not evaluated."""
        base_results = [r for r in self.results if r.recipe == baseline]
        base = base_results[0].metrics.ndcg if base_results else 0.0
        ndcg = (self.result(recipe) if recipe else self.best).metrics.ndcg
        return (ndcg - base) / base * 100.0 if base > 0 else None

    def to_dict(self) -> dict[str, Any]:
        split = self.split
        validation = split.validation
        lift = self.lift_percent
        count_lift = self.lift_over(COUNT_BASELINE)
        document = {
            "k": self.k,
            "repeat": split.repeat,
            "seed": self.seed,
            "budget_seconds": self.budget_seconds,
            "data": {
                "train_from": split.train_from.isoformat(),
                "validation_from": validation.test_from.isoformat() if validation else None,
                "test_from": split.test_from.isoformat(),
                "test_to": split.test_to.isoformat(),
                "train_customers": len(split.customer_ids),
                "train_products": split.n_items,
                "train_interactions": int(split.train.matrix.nnz),
                "test_users": int(split.users.size),
                "validation_users": int(validation.users.size) if validation else 0,
            },
            "results": [self._result_dict(r) for r in self.results],
            "baseline": self.baseline,
            "best": self.best.recipe,
            "best_vs_baseline_percent": None if lift is None else round(lift, 2),
            "best_vs_popularity_count_percent": _rounded(count_lift),
            "served": self.served.recipe,
            "best_single": self.best_single.recipe,
            "served_vs_best_single_percent": _rounded(
                self.lift_over(self.best_single.recipe, self.served.recipe)
            ),
        }
        if split.repeat:
            document["best_vs_buy_again_count_percent"] = _rounded(self.lift_over(REPEAT_BASELINE))
        return document

    def _result_dict(self, result: RecipeReport) -> dict[str, Any]:
        """A recipe's figures, with its lift over `buy-again-count` in repeat mode."""
        document = result.to_dict()
        if self.split.repeat:
            lift = self.lift_over(REPEAT_BASELINE, result.recipe)
            document["vs_buy_again_count_percent"] = _rounded(lift)
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _rounded(percent: float | None) -> float | None:
    return None if percent is None else round(percent, 2)


def evaluate_all(
    interactions: Sequence[Interaction],
    recipes: Sequence[str],
    *,
    test_from: datetime | None = None,
    test_days: int | None = None,
    repeat: bool = False,
    k: int = 10,
    budget_seconds: float = 60.0,
    seed: int = 7,
    catalog: Catalog | None = None,
    on_progress: ProgressFn | None = None,
) -> EvaluationReport:
    """Split by time, tune and test the baselines (`baselines(repeat)`) and then `recipes`
    (budget per recipe), `blend` last whatever its place in `recipes`; `buy-again-count` is
    left out when purchases are excluded.

    Raises InsufficientData when the split leaves too little, KeyError for unknown recipes.
    """
    catalog = catalog or default_catalog()
    first = baselines(repeat)
    names = [
        *first,
        *(name for name in recipes if name not in (*first, REPEAT_BASELINE, BLEND)),
    ]
    names += [BLEND] if BLEND in recipes else []  # last: it blends the others
    unknown = [name for name in names if name not in catalog.names]
    if unknown:
        raise KeyError(
            f"unknown recipe(s): {', '.join(unknown)}; known: {', '.join(catalog.names)}"
        )
    split = with_binary_rows(
        time_split(interactions, test_from=test_from, test_days=test_days, repeat=repeat)
    )
    results: list[RecipeReport] = []
    scored: list[tuple[str, dict[str, Any], float]] = []
    for done, name in enumerate(names):
        if on_progress:
            on_progress(done, len(names), f"{name}: tuning")

        def make(params: dict[str, Any], name: str = name) -> Recipe:
            return catalog.make(name, params, seed)

        ndcg = 0.0
        if name == BLEND:
            params, trials, exhausted = _tune_blend(catalog, split, scored, budget_seconds, seed)
        else:
            tuning = tune(make, catalog.grids.get(name, [{}]), split.validation, budget_seconds)
            params, trials, exhausted = tuning.params, tuning.trials, tuning.budget_exhausted
            ndcg = tuning.metrics.ndcg if tuning.metrics is not None else 0.0
        if on_progress:
            on_progress(done, len(names), f"{name}: test")
        report = evaluate_recipe(make(params), split, k)
        if name != BLEND:  # with its full parameters (a seed included) for the blend
            scored.append((name, report.params, ndcg))
        results.append(replace(report, recipe=name, trials=trials, budget_exhausted=exhausted))
    if on_progress:
        on_progress(len(names), len(names), "done")
    return EvaluationReport(split, results, k, seed, budget_seconds)


def _tune_blend(
    catalog: Catalog,
    split: Split,
    scored: list[tuple[str, dict[str, Any], float]],
    budget_seconds: float,
    seed: int,
) -> tuple[dict[str, Any], list[Trial], bool]:
    """The blend's parameters, tuned on the validation split over the recipes tuned before
    it; without a validation split, the best of them (by its first grid point) alone."""
    pool = blend_pool(scored, split.repeat)
    if not pool:
        raise ValueError("a blend needs other recipes to blend: none was evaluated")
    if split.validation is None:
        name, params = pool[0]
        return {"components": [{"recipe": name, "params": params, "weight": 1.0}]}, [], False

    def make(name: str, params: dict[str, Any]) -> Recipe:
        return catalog.make(name, params, seed)

    tuning = tune_blend(pool, split.validation, make, budget_seconds=budget_seconds, seed=seed)
    return tuning.params, tuning.trials, tuning.budget_exhausted


def _validation_ndcg(result: RecipeReport) -> float:
    """The NDCG of a recipe's chosen point on the validation slice (its best trial)."""
    return max((t.ndcg for t in result.trials), default=0.0)
