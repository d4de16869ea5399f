"""`make bench-quality`, signals section: does a signal the served model ignores help?

A signal is kept in the served model only if validation shows it helps on more than one data
set (issue 16). Measured here, on the data sets of `bench/quality.py`:

- quantity: the collaborative recipes fitted on binary rows (who bought what: what the
  served model uses) against rows weighted by the quantity (log1p of a customer's total
  quantity of the product, as `mgrecs evaluate` used to), bounded (the same, capped at 3
  units) and as a tie-breaker only (1 + 1 % of the log weight);
- region: the blend chosen on validation with and without `regional-popularity` among its
  components (only the generator's orders carry regions; elsewhere the two are the same).

Time of day and week have their own section, `bench/context.py` (also run by
`make bench-quality`).

Each recipe's parameters are tuned once on the validation slice with binary rows; every
variant is then measured with those parameters on the validation slice (the decision) and
on the test period (what it would have given).

Usage: python bench/signals.py [--data-dir DIR] [--only NAME,...] [--budget SECONDS]
"""

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from quality import Case, cases
from scipy import sparse

from mgrecs.engine.dataset import binarize
from mgrecs.engine.evaluation import Split, default_catalog, evaluate_recipe, time_split, tune
from mgrecs.engine.evaluation.blending import BLEND, blend_pool, tune_blend
from mgrecs.engine.recipes import Recipe

RECIPES = ("rp3beta", "itemknn", "als", "ease")
MAX_ITEMS_EASE = 5_000
"""EASE inverts an items x items matrix per fit: on Instacart's 13,568 products the eight
fits of this section would take most of its time, so it runs on the smaller catalogues."""
HELPS_PERCENT = 1.0
"""Validation NDCG@10 gain that counts as "helps" for the decision."""
CAP_UNITS = 3.0
MIN_ABOVE_ONE_PERCENT = 1.0
"""A data set whose pairs are (almost) all one unit carries no quantity: left out of the
decision (its "quantity" rows are the binary ones times log1p(1))."""

Weighting = Callable[[sparse.csr_matrix], sparse.csr_matrix]


def _with_values(matrix: sparse.csr_matrix, values: Any) -> sparse.csr_matrix:
    weighted = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    weighted.data = np.asarray(values, dtype=np.float32)
    return weighted


WEIGHTINGS: dict[str, Weighting] = {
    "binary": lambda m: sparse.csr_matrix(binarize(m), dtype=np.float32),
    "quantity": lambda m: sparse.csr_matrix(m, dtype=np.float32),
    "bounded": lambda m: _with_values(m, np.minimum(m.data, np.log1p(CAP_UNITS))),
    "tie-break": lambda m: _with_values(m, 1.0 + 0.01 * m.data),
}
"""Row values from the quantity-weighted matrix (log1p of each pair's total quantity)."""


def reweighted(split: Split, weighting: Weighting) -> Split:
    """`split` (and its validation slice) with the training rows re-weighted."""
    validation = split.validation
    if validation is not None:
        validation = reweighted(validation, weighting)
    train = replace(split.train, matrix=weighting(split.train.matrix))
    return replace(split, train=train, validation=validation)


def quantity_section(case: Case, budget: float, seed: int) -> list[str]:
    """Print the quantity table of one data set; returns "recipe/variant" that helped on
    validation."""
    started = time.perf_counter()
    split = time_split(case.load(), test_days=case.test_days, repeat=case.repeat)
    values = split.train.matrix.data
    above_one = float(np.mean(values > np.log1p(1.0) + 1e-6)) * 100
    print(
        f"\n### quantity: {case.name} ({split.n_items:,} products; "
        f"{above_one:.1f} % of pairs above one unit)"
    )
    header = f"{'recipe':<10} {'rows':<10} {'val NDCG':>9} {'vs binary':>10} {'test NDCG':>10}"
    print(header)
    print("-" * len(header))
    catalog = default_catalog()
    variants = {name: reweighted(split, weighting) for name, weighting in WEIGHTINGS.items()}
    helped = []
    for name in RECIPES:
        if name == "ease" and split.n_items > MAX_ITEMS_EASE:
            continue

        def make(params: dict[str, Any], name: str = name) -> Recipe:
            return catalog.make(name, params, seed)

        binary = variants["binary"]
        if binary.validation is None:
            print(f"{name:<10} no validation slice")
            continue
        params = tune(make, catalog.grids.get(name, [{}]), binary.validation, budget).params
        base = None
        for variant, variant_split in variants.items():
            assert variant_split.validation is not None
            val = evaluate_recipe(make(params), variant_split.validation).metrics.ndcg
            test = evaluate_recipe(make(params), variant_split).metrics.ndcg
            base = val if base is None else base
            gain = (val / base - 1) * 100 if base > 0 else 0.0
            print(
                f"{name:<10} {variant:<10} {val:9.4f} "
                f"{'' if variant == 'binary' else f'{gain:+.1f}%':>10} {test:10.4f}"
            )
            if variant != "binary" and gain >= HELPS_PERCENT:
                helped.append(f"{name}/{variant}")
    print(f"({time.perf_counter() - started:.0f} s)")
    if above_one < MIN_ABOVE_ONE_PERCENT:
        print("(no quantity here: every pair is one unit, so a gain is only a scale effect)")
        return []
    return helped


REGIONAL = "regional-popularity"
SERVED_REPEAT_POOL = ("buy-again", "rp3beta", "als", "itemknn", "popularity", REGIONAL)
"""What a repeat-mode blend is tuned over here: buy-again, which counts distinct orders
itself, with the collaborative recipes that quantity rows help and the baselines."""


def served_quantity_section(case: Case, budget: float, seed: int) -> bool:
    """Repeat mode: the blend chosen on validation (what serves there) with binary against
    quantity rows; returns whether quantity helped it on validation."""
    base = time_split(case.load(), test_days=case.test_days, repeat=True)
    catalog = default_catalog()

    def make(name: str, params: dict[str, Any]) -> Recipe:
        return catalog.make(name, params, seed)

    print(f"\n### quantity in the served blend: {case.name}")
    figures = {}
    for label in ("binary", "quantity"):
        split = reweighted(base, WEIGHTINGS[label])
        validation = split.validation
        if validation is None:
            print("no validation slice")
            return False
        scored = []
        for name in SERVED_REPEAT_POOL:
            tuning = tune(
                lambda p, name=name: make(name, p),
                catalog.grids.get(name, [{}]),
                validation,
                budget,
            )
            scored.append((name, tuning.params, tuning.metrics.ndcg if tuning.metrics else 0.0))
        tuned = tune_blend(
            blend_pool(scored, True), validation, make, budget_seconds=budget, seed=seed
        )
        test = evaluate_recipe(make(BLEND, tuned.params), split).metrics.ndcg
        figures[label] = tuned.metrics.ndcg
        gain = (tuned.metrics.ndcg / figures["binary"] - 1) * 100 if figures["binary"] else 0.0
        print(
            f"{label:<10} val {tuned.metrics.ndcg:.4f} "
            f"{'' if label == 'binary' else f'({gain:+.1f}%)'} test {test:.4f}"
        )
    return figures["binary"] > 0 and (figures["quantity"] / figures["binary"] - 1) * 100 >= (
        HELPS_PERCENT
    )


BLEND_POOL = ("rp3beta", "itemknn", "als", "popularity", "trending", REGIONAL)

"""The blend's candidates here (EASE left out for Instacart's catalogue, see MAX_ITEMS_EASE)."""


def region_section(case: Case, budget: float, seed: int) -> bool:
    """Print the blend chosen on validation with and without `regional-popularity` among
    its components; returns whether the region helped on validation."""
    started = time.perf_counter()
    split = time_split(case.load(), test_days=case.test_days, repeat=case.repeat)
    split = reweighted(split, WEIGHTINGS["binary"])
    validation = split.validation
    regions = int(np.unique(split.train.customer_region[split.train.customer_region >= 0]).size)
    print(f"\n### region: {case.name} ({regions} regions known)")
    if validation is None:
        print("no validation slice")
        return False
    catalog = default_catalog()

    def make(name: str, params: dict[str, Any]) -> Recipe:
        return catalog.make(name, params, seed)

    scored = []
    for name in BLEND_POOL:
        tuning = tune(
            lambda p, name=name: make(name, p), catalog.grids.get(name, [{}]), validation, budget
        )
        ndcg = tuning.metrics.ndcg if tuning.metrics is not None else 0.0
        scored.append((name, tuning.params, ndcg))
    header = f"{'blend':<22} {'val NDCG':>9} {'vs without':>11} {'test NDCG':>10}  components"
    print(header)
    print("-" * len(header))
    figures = {}
    for label, pool_scored in (
        ("without region", [s for s in scored if s[0] != REGIONAL]),
        ("with region", scored),
    ):
        pool = blend_pool(pool_scored, split.repeat)
        tuned = tune_blend(pool, validation, make, budget_seconds=budget, seed=seed)
        test = evaluate_recipe(make(BLEND, tuned.params), split).metrics.ndcg
        figures[label] = tuned.metrics.ndcg
        gain = (tuned.metrics.ndcg / figures["without region"] - 1) * 100
        components = " + ".join(
            f"{c['recipe']} x{c['weight']:g}" for c in tuned.params["components"]
        )
        print(
            f"{label:<22} {tuned.metrics.ndcg:9.4f} "
            f"{'' if label.startswith('without') else f'{gain:+.1f}%':>11} {test:10.4f}  "
            f"{components}"
        )
    print(f"({time.perf_counter() - started:.0f} s)")
    base = figures["without region"]
    return base > 0 and (figures["with region"] / base - 1) * 100 >= HELPS_PERCENT


def data_set(case: Case) -> str:
    """The data set behind a case: the generator's seeds and modes count as one."""
    return "generator" if case.generated else case.name.split(" (")[0].split(",")[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".cache/bench-data"))
    parser.add_argument("--only", default="", help="comma-separated words; run matching cases")
    parser.add_argument("--budget", type=float, default=30.0, help="tuning seconds per recipe")
    parser.add_argument("--seed", type=int, default=7, help="seed of randomised recipes")
    args = parser.parse_args(argv)
    wanted = [word.strip().lower() for word in args.only.split(",") if word.strip()]
    print("## Signals: quantity as a row weight (validation decides; test shown)")
    helped: dict[str, list[str]] = {}
    chosen = [
        c for c in cases(args.data_dir) if not wanted or any(w in c.name.lower() for w in wanted)
    ]
    for case in chosen:
        try:
            helped[case.name] = quantity_section(case, args.budget, args.seed)
        except FileNotFoundError as error:
            print(f"\n### {case.name}\nskipped: {error} (run `make bench-quality`)")
    for repeat, mode in ((False, "discovery (purchases excluded)"), (True, "repeat")):
        in_mode = [c for c in chosen if c.repeat == repeat and c.name in helped]
        sources = sorted({data_set(c) for c in in_mode if helped[c.name]})
        print(
            f"\n{mode}: quantity helped on validation (>= +{HELPS_PERCENT:g} %) on "
            f"{len(sources)} data set(s)"
            + (f" ({', '.join(sources)})" if sources else "")
            + "".join(f"; {c.name}: {', '.join(helped[c.name])}" for c in in_mode if helped[c.name])
            + (
                " -> meets the rule for keeping it (helps on more than one data set)"
                if len(sources) > 1
                else " -> not kept: the served model stays on binary rows"
            )
        )

    served = sorted(
        {
            data_set(c)
            for c in chosen
            if c.repeat and c.name in helped and served_quantity_section(c, args.budget, args.seed)
        }
    )
    print(
        f"\nrepeat, the served blend (buy-again counts distinct orders itself): quantity rows "
        f"helped it on validation (>= +{HELPS_PERCENT:g} %) on {len(served)} data set(s)"
        + (f" ({', '.join(served)})" if served else "")
        + (
            " -> kept"
            if len(served) > 1
            else " -> not kept: what quantity adds to single recipes, buy-again already gives"
        )
    )

    print("\n## Signals: the customer's region (a blend with and without regional popularity)")
    region_helped = set()
    for case in chosen:
        if case.repeat:
            continue
        try:
            if region_section(case, args.budget, args.seed):
                region_helped.add(data_set(case))
        except FileNotFoundError as error:
            print(f"\n### {case.name}\nskipped: {error} (run `make bench-quality`)")
    print(
        f"\nregion helped on validation (>= +{HELPS_PERCENT:g} %) on "
        f"{len(region_helped)} data set(s): {', '.join(sorted(region_helped)) or 'none'}"
        + (
            " -> kept: regional-popularity stays a blend candidate (its weight is chosen on "
            "each data set's validation slice)"
            if len(region_helped) > 1
            else " -> only the generator's orders carry regions: regional-popularity stays a "
            "blend candidate whose weight validation sets per deployment (0 where it does "
            "not help), no per-region model"
        )
    )


if __name__ == "__main__":
    main()
