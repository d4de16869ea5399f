"""Issue 16: does choosing the blend's weights with less noise help? (exploration, not `make`)

The blend's weights (and per-segment weights) are chosen on one validation slice; on
Instacart that is ~500 customers. Variants that reduce the noise of that choice, not add
signals:
- pooled: the steepest ascent measures each point on two slices at once (the validation
  slice and the one before it, each scored by components fitted on what precedes it);
- finer: after the ascent over `blending.WEIGHTS`, another over a finer grid;
- restarts: the ascent from each of the three best single components, the best end kept;
- bagging: each slice's choice, every weight line normalised to sum 1, averaged;
- segments pooled: global weights from the latest slice, segment weights on two;
- shrunk: each segment's weight line (normalised) halfway to the global one.

Slices ("folds"), all by time: fold 0 is the test period, fold 1 the validation slice
`evaluate_all` uses, fold k+1 the slice of the same length before fold k (trained on what
precedes it). Held-out checks, both fixed before looking: H1 chooses on slices ending at
fold 2 (fold 2 alone: today's procedure; folds 2+3 pooled; ...) and measures fold 1; H2 the
same one fold earlier (choose from fold 3 on, measure fold 2). "test" chooses from fold 1 on
(what a retrain would do) and measures the test period: reported, never used to choose.

Segment edges are the terciles of the most recent chosen slice's training customers'
distinct products (what the blend's parameters would carry), applied to every slice.

Each variant's gain over today's procedure comes with a paired bootstrap interval (2,000
draws over the measured slice's customers). Results: bench/RESULTS.md, issue 16 afternoon.

Usage: python bench/blend_noise.py [--data-dir DIR] [--only NAME,...] [--variants WORD,...]
"""

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from quality import cases

from mgrecs.engine.evaluation import BASELINES, REPEAT_BASELINE, default_catalog, evaluate_all
from mgrecs.engine.evaluation.blending import (
    BLEND,
    MAX_TRIALS,
    SEGMENT_MIN_CUSTOMERS,
    SEGMENT_QUANTILES,
    WEIGHTS,
    _Cache,
    _cache,
    _metrics,
    blend_pool,
)
from mgrecs.engine.evaluation.evaluate import top_k
from mgrecs.engine.evaluation.metrics import per_user
from mgrecs.engine.evaluation.split import Split, time_split, with_binary_rows
from mgrecs.engine.evaluation.tuning import TUNING_K
from mgrecs.engine.recipes.blend import distinct_products
from mgrecs.engine.records import Interaction

FINE = (0.0, 0.05, 0.1, 0.175, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
"""The finer grid of the ascent's end (WEIGHTS and the points between them)."""
FOLDS = 5
"""Validation slices built before the test period (fold 1 .. FOLDS)."""


@dataclass(frozen=True)
class Fold:
    """One slice's cached component scores, truth and each customer's history size."""

    cache: _Cache
    truth: Any
    n_items: int
    train_counts: Any
    user_counts: Any

    @property
    def size(self) -> int:
        return int(self.truth.shape[0])


Choice = tuple[np.ndarray, np.ndarray]
"""Segment edges and one weight line per segment (one line and no edges: global weights)."""


def ndcg(fold: Fold, choice: Choice) -> float:
    """NDCG@10 on `fold` of a choice, each customer weighted by their segment's line."""
    return float(per_customer(fold, choice).mean()) if fold.size else 0.0


Part = tuple[_Cache, Any, int]
"""Some of a fold's customers: their cache, truth and the fold's catalogue size."""


def parts(folds: Sequence[Fold], rows: Sequence[Any]) -> list[Part]:
    return [(f.cache.take(r), f.truth[r], f.n_items) for f, r in zip(folds, rows, strict=True)]


def per_customer(fold: Fold, choice: Choice) -> np.ndarray:
    """Each customer's NDCG@10 on `fold` of a choice (as `ndcg`, before the mean)."""
    edges, lines = choice
    segment = np.searchsorted(edges, fold.user_counts, side="left")
    point = lines[np.minimum(segment, lines.shape[0] - 1)]
    total = np.zeros(fold.cache.columns.shape, dtype=np.float32)
    for n, value in enumerate(fold.cache.values):
        total += point[:, n].astype(np.float32)[:, np.newaxis] * value
    total[fold.cache.padding] = -np.inf
    positions = top_k(total, TUNING_K, None)
    chosen = np.take_along_axis(fold.cache.columns, np.maximum(positions, 0), axis=1)
    chosen[positions < 0] = -1
    return per_user(chosen, fold.truth)["ndcg"]


def interval(variant: np.ndarray, base: np.ndarray, draws: int = 2_000) -> str:
    """Paired bootstrap over the customers: mean gain of `variant` over `base`, 95 %."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, base.size, (draws, base.size))
    gains = variant[picks].mean(axis=1) / np.maximum(base[picks].mean(axis=1), 1e-12) - 1
    low, high = np.percentile(gains * 100, [2.5, 97.5])
    return f"[{low:+.1f}, {high:+.1f}]"


def pooled(pieces: Sequence[Part], point: np.ndarray) -> float:
    """Mean NDCG@10 of global weights over the customers of every piece."""
    sizes = [truth.shape[0] for _, truth, _ in pieces]
    total = sum(
        _metrics(cache, point, truth, n_items).ndcg * size
        for (cache, truth, n_items), size in zip(pieces, sizes, strict=True)
        if size
    )
    return total / max(sum(sizes), 1)


def ascend(
    start: np.ndarray,
    measure: Callable[[np.ndarray], float],
    grid: Sequence[float],
    rng: np.random.Generator,
    budget: list[int],
) -> tuple[np.ndarray, float]:
    """`blending._ascend`: steepest ascent, every component at every grid weight per round."""
    best, best_value = start, measure(start)
    improved = True
    while improved and budget[0] < MAX_TRIALS:
        improved = False
        step, step_value = best, best_value
        for component in rng.permutation(best.size).tolist():
            for weight in grid:
                point = best.copy()
                point[component] = weight
                if np.array_equal(point, best) or not point.any():
                    continue
                budget[0] += 1
                value = measure(point)
                if value > step_value:
                    step, step_value, improved = point, value, True
        best, best_value = step, step_value
    return best, best_value


def search(
    measure: Callable[[np.ndarray], float],
    starts: Sequence[np.ndarray],
    finer: bool,
    seed: int,
) -> np.ndarray:
    """The best end of the ascents from `starts` (then over FINE when `finer`)."""
    ends = []
    for start in starts:
        rng, budget = np.random.default_rng(seed), [0]
        point, value = ascend(start, measure, WEIGHTS, rng, budget)
        if finer:
            point, value = ascend(point, measure, FINE, rng, budget)
        ends.append((value, point))
    return max(ends, key=lambda e: e[0])[1]


def choose(
    folds: Sequence[Fold],
    *,
    finer: bool,
    restarts: int,
    global_slices: int = 0,
    shrink: float = 0.0,
    seed: int = 7,
) -> Choice:
    """Weights chosen on `folds` pooled (the first is the most recent): global (on the first
    `global_slices` only if given), then per segment when each segment has enough customers
    and it is strictly better (tune_blend); each segment line (normalised to sum 1) moved by
    `shrink` towards the global one."""
    n = len(folds[0].cache.values)
    everyone = [(f.cache, f.truth, f.n_items) for f in folds[: global_slices or len(folds)]]

    def measure_all(point: np.ndarray) -> float:
        return pooled(everyone, point)

    singles = [measure_all(np.eye(n)[c]) for c in range(n)]
    order = np.argsort(-np.asarray(singles), kind="stable")[:restarts]
    best = search(measure_all, [np.eye(n)[c] for c in order], finer, seed)
    everyone = [(f.cache, f.truth, f.n_items) for f in folds]
    best_value = measure_all(best)
    edges = np.unique(np.quantile(folds[0].train_counts, SEGMENT_QUANTILES))
    segment_rows = [
        [np.flatnonzero(np.searchsorted(edges, f.user_counts, side="left") == s) for f in folds]
        for s in range(edges.size + 1)
    ]
    if edges.size == 0 or min(sum(r.size for r in rs) for rs in segment_rows) < (
        SEGMENT_MIN_CUSTOMERS * len(folds)
    ):
        return np.zeros(0), best[np.newaxis]
    lines = []
    for rows in segment_rows:
        pieces = parts(folds, rows)

        def measure(point: np.ndarray, pieces: list[Part] = pieces) -> float:
            return pooled(pieces, point)

        lines.append(search(measure, [best], finer, seed))
    table = np.asarray(lines)
    if shrink:
        table = (1 - shrink) * table / table.sum(axis=1, keepdims=True) + shrink * best / best.sum()
    choice = edges.astype(np.float64), table
    total = sum(ndcg(f, choice) * f.size for f in folds) / sum(f.size for f in folds)
    return choice if total > best_value else (np.zeros(0), best[np.newaxis])


def bag(choices: Sequence[Choice], edges: np.ndarray) -> Choice:
    """Each choice's weight lines (normalised to sum 1, expanded to `edges`' segments),
    averaged."""
    parts = edges.size + 1
    lines = []
    for _, line in choices:
        full = np.repeat(line, parts, axis=0) if line.shape[0] == 1 else line
        lines.append(full / full.sum(axis=1, keepdims=True))
    return edges, np.mean(lines, axis=0)


def folds_of(
    interactions: list[Interaction],
    split: Split,
    pool: list[tuple[str, dict[str, Any]]],
    seed: int,
) -> list[Fold]:
    """Fold 0 (test) .. FOLDS, each cached as `tune_blend` caches its validation slice."""
    catalog = default_catalog()
    assert split.validation is not None
    length = split.test_from - split.validation.test_from
    slices: list[Split] = [split, split.validation]
    for _ in range(FOLDS - 1):
        end: datetime = slices[-1].test_from
        before = [i for i in interactions if i.ordered_at < end]
        slices.append(
            with_binary_rows(
                time_split(
                    before, test_from=end - length, repeat=split.repeat, validation_fraction=0
                )
            )
        )
    folds = []
    for part in slices:
        recipes = [catalog.make(name, params, seed) for name, params in pool]
        users = np.arange(part.users.size)
        cache, _ = _cache(recipes, [True] * len(recipes), part, users)
        counts = distinct_products(part.train.matrix)
        folds.append(Fold(cache, part.truth, part.n_items, counts, counts[part.users]))
    return folds


VARIANTS: dict[str, tuple[int, str, bool, int, int, float]] = {
    # name: (slices, how, finer, restarts, global slices, shrink)
    "one slice (today)": (1, "pool", False, 1, 0, 0.0),
    "finer end": (1, "pool", True, 1, 0, 0.0),
    "3 restarts": (1, "pool", False, 3, 0, 0.0),
    "3 restarts + finer end": (1, "pool", True, 3, 0, 0.0),
    "pooled 2 slices": (2, "pool", False, 1, 0, 0.0),
    "pooled 2 slices + finer end": (2, "pool", True, 1, 0, 0.0),
    "pooled 3 slices": (3, "pool", False, 1, 0, 0.0),
    "bagging 2 slices": (2, "bag", False, 1, 0, 0.0),
    "bagging 3 slices": (3, "bag", False, 1, 0, 0.0),
    "global 1 slice, segments pooled 2": (2, "pool", False, 1, 1, 0.0),
    "segments shrunk 1/2 to global": (1, "pool", False, 1, 0, 0.5),
    "pooled 2 slices, segments shrunk 1/2": (2, "pool", False, 1, 0, 0.5),
}


def run(
    name: str,
    interactions: list[Interaction],
    repeat: bool,
    test_days: int,
    variants: Sequence[str] = (),
) -> None:
    catalog = default_catalog()
    recipes = [n for n in catalog.names if n not in (*BASELINES, REPEAT_BASELINE)]
    recipes = [n for n in recipes if repeat or n != "buy-again"]
    started = time.perf_counter()
    report = evaluate_all(
        interactions, recipes, test_days=test_days, repeat=repeat, catalog=catalog
    )
    scored = [
        (r.recipe, r.params, max((t.ndcg for t in r.trials), default=0.0))
        for r in report.results
        if r.recipe != BLEND
    ]
    pool = blend_pool(scored, repeat)
    served, single = report.served, report.best_single
    print(
        f"\n## {name}\nevaluate_all {time.perf_counter() - started:.0f} s; served "
        f"{served.recipe} {served.metrics.ndcg:.6f}, best single {single.recipe} "
        f"{single.metrics.ndcg:.6f}; pool {[p[0] for p in pool]}",
        flush=True,
    )
    started = time.perf_counter()
    folds = folds_of(interactions, report.split, pool, 7)
    print(
        f"folds cached {time.perf_counter() - started:.0f} s; customers "
        f"{[f.size for f in folds]} (fold 0 = test)",
        flush=True,
    )
    table: dict[str, dict[str, float]] = {}
    each: dict[tuple[str, str], np.ndarray] = {}
    for variant, (count, how, finer, restarts, global_slices, shrink) in VARIANTS.items():
        if variants and variant != "one slice (today)" and not any(w in variant for w in variants):
            continue
        table[variant] = {}
        for check, first in (("H1", 2), ("H2", 3), ("test", 1)):
            chosen = folds[first : first + count]
            if len(chosen) < count:
                continue
            if how == "pool":
                choice = choose(
                    chosen,
                    finer=finer,
                    restarts=restarts,
                    global_slices=global_slices,
                    shrink=shrink,
                )
            else:
                edges = np.unique(np.quantile(chosen[0].train_counts, SEGMENT_QUANTILES))
                apart = [choose([f], finer=finer, restarts=restarts) for f in chosen]
                choice = bag(apart, edges if any(c[0].size for c in apart) else np.zeros(0))
            table[variant][check] = ndcg(folds[first - 1], choice)
            each[variant, check] = per_customer(folds[first - 1], choice)
            table[variant][check + " segments"] = float(choice[1].shape[0])
        base = table["one slice (today)"]
        cells = [
            f"{check} {value:.6f} ({(value / base[check] - 1) * 100:+.2f} % "
            + interval(each[variant, check], each["one slice (today)", check])
            + ")"
            for check, value in table[variant].items()
            if "segments" not in check
        ]
        print(f"{variant:<30} " + "; ".join(cells), flush=True)
    n = len(pool)
    singles = {
        check: max(
            (ndcg(folds[first], (np.zeros(0), np.eye(n)[c][np.newaxis])), c) for c in range(n)
        )[1]
        for check, first in (("H1", 2), ("H2", 3), ("test", 1))
    }
    alone = {check: (np.zeros(0), np.eye(n)[c][np.newaxis]) for check, c in singles.items()}
    cells = [
        f"{check} {ndcg(folds[first - 1], alone[check]):.6f} ({pool[singles[check]][0]})"
        for check, first in (("H1", 2), ("H2", 3), ("test", 1))
    ]
    print(f"{'best single on the slice':<30} " + "; ".join(cells), flush=True)
    Path(".cache/blend_noise").mkdir(parents=True, exist_ok=True)
    stem = name.split(" (")[0].replace(" ", "_").replace(",", "")
    Path(f".cache/blend_noise/{stem}{'_' if variants else ''}{len(variants)}.json").write_text(
        json.dumps(table, indent=1)
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".cache/bench-data"))
    parser.add_argument("--only", default="")
    parser.add_argument("--variants", default="", help="comma-separated words (and today's)")
    args = parser.parse_args(argv)
    wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    for case in cases(args.data_dir):
        if wanted and not any(w in case.name.lower() for w in wanted):
            continue
        variants = [w.strip() for w in args.variants.split(",") if w.strip()]
        run(case.name, case.load(), case.repeat, case.test_days, variants)


if __name__ == "__main__":
    main(sys.argv[1:])
