"""Choose a blend's weights on the validation split, without refitting anything per trial.

Each component (a recipe with parameters already tuned) is fitted once on the validation
split's training part; its scores of the validation customers, divided by its scale (as
`BlendRecipe` divides them), are cached as each customer's CANDIDATES best products. A
trial of weights is then a weighted sum of cached arrays and a top-10, milliseconds each,
so a coordinate search over a small grid of relative weights fits in any tuning budget. The
search starts from the best single component and only moves to strictly better points, so
the blend it returns is never below its best component on validation. The budget counts
from the end of the components' fits: a slow component (EASE on a large catalogue) used to
eat it, so the same data gave a different blend on a busy machine than on a quiet one.

Then, when the validation slice has enough customers, the same search runs once per segment
of customers by history size (terciles of the training customers' distinct products), each
from the global weights and measured on that segment's customers only, so the segmented
blend is never below the global one on validation; it serves when it is strictly better.
Light buyers lean on what sells, heavy ones on the collaborative components.

The cached figures treat a product outside a component's CANDIDATES best as scoring 0 in
it: a close approximation of the blend's full scores (exact for a single component whose
10th best score is positive), cheap enough for catalogues of any size.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float32Array, Float64Array, IntArray
from mgrecs.engine.evaluation.evaluate import SCORE_CELLS, Trial, top_k
from mgrecs.engine.evaluation.metrics import Metrics, ranking_metrics
from mgrecs.engine.evaluation.split import Split
from mgrecs.engine.evaluation.tuning import TUNING_K
from mgrecs.engine.recipes.base import ContextScoring, Recipe
from mgrecs.engine.recipes.blend import (
    Component,
    ScaleSample,
    component_scale,
    distinct_products,
)
from mgrecs.engine.recipes.support import history_context, score_rows

BLEND = "blend"
BLEND_BASELINES = ("popularity", "trending", "regional-popularity")
"""The non-personal recipes a blend may take: what sells, what rises, what sells here."""
BLEND_PERSONAL = 4
"""How many of the best personal recipes (by validation NDCG@10) a blend may take: on the
generator, all four default candidates blended better on validation (and test) than the
best two or three."""
REPEAT_ONLY = ("buy-again",)
"""Personal recipes that join a blend only when repeat purchases count, whatever their rank."""
NOT_BLENDED = ("popularity-count", "buy-again-count", BLEND)
MIN_GAIN = 0.02
"""A blend serves only when its validation NDCG@10 beats the best single recipe's by this
share: it costs more to fit, store and explain, and on one validation slice smaller gains
are within the noise (one seed's figure moves by about 2.5 % by chance: bench/RESULTS.md)."""


def blend_wins(blend_ndcg: float, best_single_ndcg: float) -> bool:
    """Whether a blend earns its place over the best single recipe (MIN_GAIN)."""
    return blend_ndcg >= best_single_ndcg * (1.0 + MIN_GAIN) and blend_ndcg > best_single_ndcg


WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Relative weights tried for each component (the best single one starts at 1)."""
CANDIDATES = 100
"""Products cached per customer and component."""
MAX_TRIALS = 2_000
"""Weight trials at most, whatever the budget: the search's own bound, which does not depend
on the machine's load (each trial is a weighted sum and a top-10 over the cache)."""
SEGMENT_QUANTILES = (1 / 3, 2 / 3)
"""Segment edges, as quantiles of the validation training customers' distinct products: light,
medium and heavy buyers (per-segment weights beat global ones on two validation slices of
three data sets: bench/RESULTS.md, issue 16 midday)."""
SEGMENT_MIN_CUSTOMERS = 100
"""Validation customers each segment needs to get its own weights: fewer would fit noise."""
MAX_USERS = 10_000
"""Validation customers measured at most (a seeded sample beyond): bounds the cache (a few
hundred MB at most: candidates x components per customer)."""


@dataclass(frozen=True)
class BlendTuning:
    """The chosen blend and how it was found."""

    params: dict[str, Any]
    """The blend's parameters: `{"components": [...]}`, components of weight 0 dropped."""
    metrics: Metrics
    """Its validation metrics (from the cached scores)."""
    singles: list[float]
    """Each pool member's own validation NDCG@10, in pool order (same measure)."""
    trials: list[Trial] = field(default_factory=list)
    budget_exhausted: bool = False
    weights: list[float] = field(default_factory=list)
    """The chosen weight of each pool member, in pool order (0: left out; with segments, its
    largest segment weight)."""
    recipes: list[Recipe] = field(default_factory=list, repr=False)
    """Each pool member fitted on the validation split's training part, in pool order."""
    scales: list[float] = field(default_factory=list)
    """Each pool member's scale there (`component_scale`), in pool order: with `recipes`,
    the blend as its `fit` on that data would leave it (`BlendRecipe.with_fitted`)."""


@dataclass(frozen=True)
class _Cache:
    """Per validation customer, the union of the components' candidates (columns ascending,
    -1 padding) and each component's normalised score there (0 where it has none)."""

    columns: IntArray
    values: list[Float32Array]
    padding: BoolArray

    def take(self, rows: IntArray) -> "_Cache":
        return _Cache(self.columns[rows], [v[rows] for v in self.values], self.padding[rows])


def blend_pool(
    scored: Sequence[tuple[str, dict[str, Any], float]], repeat: bool
) -> list[tuple[str, dict[str, Any]]]:
    """The components a blend is tuned over, from tuned recipes (name, params, validation
    NDCG@10): the BLEND_PERSONAL best personal ones, `buy-again` as well when `repeat`, and
    the BLEND_BASELINES among them."""
    personal = [s for s in scored if s[0] not in (*BLEND_BASELINES, *NOT_BLENDED, *REPEAT_ONLY)]
    best = sorted(personal, key=lambda s: -s[2])[:BLEND_PERSONAL]  # stable: first of equals
    again = [s for s in scored if repeat and s[0] in REPEAT_ONLY]
    rest = [s for s in scored if s[0] in BLEND_BASELINES]
    return [(name, dict(params)) for name, params, _ in [*best, *again, *rest]]


def tune_blend(
    pool: Sequence[tuple[str, dict[str, Any]]],
    validation: Split,
    make: Callable[[str, dict[str, Any]], Recipe],
    *,
    budget_seconds: float = 60.0,
    seed: int = 7,
    weights: Sequence[float] = WEIGHTS,
    fitted: Sequence[Recipe | None] = (),
    segments: bool = True,
) -> BlendTuning:
    """The weights of the `pool`'s components (name, tuned params) with the best validation
    NDCG@10, by steepest ascent from the best single component (each round tries every
    component at every weight and keeps the best change), within MAX_TRIALS and the budget,
    which starts once every component is fitted (each is fitted once whatever the budget,
    unless `fitted` gives it: the pool member's recipe already fitted on the validation
    split's training part, as its tuning left it). With `segments`, then per segment of
    customers by history size (`SEGMENT_QUANTILES`), from those weights. `seed`
    orders the tries (which of equal changes wins) and samples the customers when there are
    more than MAX_USERS."""
    if not pool:
        raise ValueError("a blend needs at least one component")
    rng = np.random.default_rng(seed)
    users = np.arange(validation.users.size)
    if users.size > MAX_USERS:
        users = np.sort(rng.choice(users, MAX_USERS, replace=False))
    truth = validation.truth[users]
    given = list(fitted) + [None] * (len(pool) - len(fitted))
    recipes = [
        make(name, params) if recipe is None else recipe
        for (name, params), recipe in zip(pool, given, strict=True)
    ]
    cache, scales = _cache(recipes, [r is None for r in given], validation, users)
    started = time.perf_counter()

    def spent(count: int) -> bool:
        return count >= MAX_TRIALS or time.perf_counter() - started > budget_seconds

    trials: list[Trial] = []

    def trial(point: Float64Array) -> Metrics:
        began = time.perf_counter()
        metrics = _metrics(cache, point, truth, validation.n_items)
        trials.append(Trial(_params(pool, point), metrics.ndcg, time.perf_counter() - began))
        return metrics

    single_metrics = [trial(np.eye(len(pool))[n]) for n in range(len(pool))]
    singles = [m.ndcg for m in single_metrics]
    first = int(np.argmax(singles))  # the first of equals
    best, best_metrics, exhausted = _ascend(
        np.eye(len(pool))[first],
        single_metrics[first],
        trial,
        lambda: spent(len(trials)),
        rng,
        weights,
    )
    params, chosen = _params(pool, best), best
    if segments and not exhausted:
        counts = distinct_products(validation.train.matrix)
        found = _segment_weights(
            cache,
            truth,
            validation.n_items,
            best,
            counts,
            counts[validation.users[users]],
            spent,
            rng,
            weights,
        )
        if found is not None:
            edges, lines, segment = found
            began = time.perf_counter()
            metrics = _metrics(cache, lines[segment], truth, validation.n_items)
            if metrics.ndcg > best_metrics.ndcg:
                params, chosen = _params(pool, lines.max(axis=0), (edges, lines)), lines.max(axis=0)
                best_metrics = metrics
                trials.append(Trial(params, metrics.ndcg, time.perf_counter() - began))
    return BlendTuning(
        params,
        best_metrics,
        singles,
        trials,
        exhausted,
        chosen.tolist(),
        recipes,
        scales,
    )


def _ascend(
    best: Float64Array,
    best_metrics: Metrics,
    measure: Callable[[Float64Array], Metrics],
    spent: Callable[[], bool],
    rng: np.random.Generator,
    weights: Sequence[float],
) -> tuple[Float64Array, Metrics, bool]:
    """Steepest ascent from `best`: each round tries every component (in a random order) at
    every weight and keeps the best strict improvement; stops when a round finds none or
    when `spent` (then also says so)."""
    exhausted = False
    improved = best.size > 1
    while improved and not exhausted:
        improved = False
        step, step_metrics = best, best_metrics
        for component in rng.permutation(best.size).tolist():
            for weight in weights:
                if spent():
                    exhausted = True
                    break
                point = best.copy()
                point[component] = weight
                if np.array_equal(point, best) or not point.any():
                    continue
                metrics = measure(point)
                if metrics.ndcg > step_metrics.ndcg:
                    step, step_metrics, improved = point, metrics, True
            if exhausted:
                break
        best, best_metrics = step, step_metrics
    return best, best_metrics, exhausted


def _segment_weights(
    cache: _Cache,
    truth: Any,
    n_items: int,
    start: Float64Array,
    counts: IntArray,
    user_counts: IntArray,
    spent: Callable[[int], bool],
    rng: np.random.Generator,
    weights: Sequence[float],
) -> tuple[Float64Array, Float64Array, IntArray] | None:
    """Segment edges (quantiles of `counts`), each segment's weights (rows; by ascent from
    `start` on its customers) and each cached customer's segment; None when a segment would
    have fewer than SEGMENT_MIN_CUSTOMERS."""
    edges = np.unique(np.quantile(counts, SEGMENT_QUANTILES)) if counts.size else np.zeros(0)
    segment = np.searchsorted(edges, user_counts, side="left").astype(np.int64)
    sizes = np.bincount(segment, minlength=edges.size + 1)
    if edges.size == 0 or sizes.min() < SEGMENT_MIN_CUSTOMERS:
        return None
    lines = [
        _segment_ascent(cache.take(rows), truth[rows], n_items, start, spent, rng, weights)
        for rows in (np.flatnonzero(segment == part) for part in range(edges.size + 1))
    ]
    return edges.astype(np.float64), np.asarray(lines), segment


def _segment_ascent(
    cache: _Cache,
    truth: Any,
    n_items: int,
    start: Float64Array,
    spent: Callable[[int], bool],
    rng: np.random.Generator,
    weights: Sequence[float],
) -> Float64Array:
    """The weights of one segment's customers (`cache`, `truth`), by ascent from `start`."""
    count = 0

    def measure(point: Float64Array) -> Metrics:
        nonlocal count
        count += 1
        return _metrics(cache, point, truth, n_items)

    point, _, _ = _ascend(start, measure(start), measure, lambda: spent(count), rng, weights)
    return point


def _params(
    pool: Sequence[tuple[str, dict[str, Any]]],
    point: Float64Array,
    segments: tuple[Float64Array, Float64Array] | None = None,
) -> dict[str, Any]:
    """Blend parameters of the weights `point`, components of weight 0 left out; with
    `segments` (edges, one weight line per segment), the kept components' segment weights."""
    kept = [n for n, weight in enumerate(point.tolist()) if weight > 0]
    params: dict[str, Any] = {
        "components": [
            Component(pool[n][0], dict(pool[n][1]), float(point[n])).as_dict() for n in kept
        ]
    }
    if segments is not None:
        edges, lines = segments
        params["segments"] = {
            "edges": edges.tolist(),
            "weights": [[float(line[n]) for n in kept] for line in lines],
        }
    return params


def _cache(
    recipes: list[Recipe], to_fit: list[bool], validation: Split, users: IntArray
) -> tuple[_Cache, list[float]]:
    """Fit each recipe of `to_fit` on the validation split's training part; keep every
    recipe's CANDIDATES best (normalised) scores per customer, purchases excluded unless
    repeats count. Also gives each recipe's scale."""
    train = validation.train
    customers = validation.users[users]
    rows_all = train.matrix[customers]
    context = history_context(train, customers)
    chunk = max(1, SCORE_CELLS // max(validation.n_items, 1))
    tops: list[tuple[IntArray, Float32Array]] = []
    sample = ScaleSample.of(train)
    scales = []
    for recipe, fit in zip(recipes, to_fit, strict=True):
        if fit:
            recipe.fit(train)
        scales.append(component_scale(recipe, sample))
        scale = np.float32(scales[-1])
        columns, values = [], []
        for start in range(0, customers.size, chunk):
            rows = rows_all[start : start + chunk]
            part = (
                context.take(start, start + chunk) if isinstance(recipe, ContextScoring) else None
            )
            scores = np.asarray(score_rows(recipe, rows, part), dtype=np.float32) / scale
            best = top_k(scores.copy(), CANDIDATES, None if validation.repeat else rows)
            columns.append(best)
            values.append(np.take_along_axis(scores, np.maximum(best, 0), axis=1))
        tops.append((np.vstack(columns), np.vstack(values)))
    return _align(tops, customers.size), scales


def _align(tops: list[tuple[IntArray, Float32Array]], n_rows: int) -> _Cache:
    """The union of the components' candidate columns per row, padded to one width, and each
    component's values on it."""
    every = np.hstack([columns for columns, _ in tops])
    every = np.where(every < 0, np.iinfo(np.int64).max, every)
    every.sort(axis=1)
    fresh = np.ones_like(every, dtype=bool)
    fresh[:, 1:] = every[:, 1:] != every[:, :-1]
    fresh &= every != np.iinfo(np.int64).max
    width = int(fresh.sum(axis=1).max(initial=0))
    columns = np.full((n_rows, max(width, 1)), -1, dtype=np.int64)
    rank = np.cumsum(fresh, axis=1) - 1
    row_index = np.broadcast_to(np.arange(n_rows)[:, None], every.shape)
    columns[row_index[fresh], rank[fresh]] = every[fresh]
    values = []
    for top, scores in tops:
        aligned = np.zeros(columns.shape, dtype=np.float32)
        valid = top >= 0
        # position of each candidate among its row's union columns (both ascending)
        rows = np.broadcast_to(np.arange(n_rows)[:, None], top.shape)[valid]
        keys = rows * (columns.max(initial=0) + 2) + top[valid]
        union_keys = np.arange(n_rows)[:, None] * (columns.max(initial=0) + 2) + columns
        flat = union_keys.ravel()
        order = np.argsort(flat, kind="stable")
        at = order[np.searchsorted(flat[order], keys)]
        aligned.ravel()[at] = scores[valid]
        values.append(aligned)
    return _Cache(columns, values, columns < 0)


def _metrics(cache: _Cache, point: Float64Array, truth: Any, n_items: int) -> Metrics:
    """Validation metrics of the blend with weights `point` (one per component, or one line
    per cached customer), from the cache."""
    total = np.zeros(cache.columns.shape, dtype=np.float32)
    for n, value in enumerate(cache.values):
        if point.ndim == 2:  # per customer
            total += point[:, n].astype(np.float32)[:, np.newaxis] * value
        elif point[n]:
            total += np.float32(point[n]) * value
    total[cache.padding] = -np.inf
    positions = top_k(total, TUNING_K, None)
    chosen = np.take_along_axis(cache.columns, np.maximum(positions, 0), axis=1)
    chosen[positions < 0] = -1
    return ranking_metrics(chosen, truth, n_items)
