"""`make bench-context`: does time of day / day of week help the ranking?

For the strongest recipes and the popularity baselines, on the data sets of
`bench/quality.py`: each recipe's parameters are tuned on validation as `mgrecs evaluate`
tunes them, then the context strength (gamma, smoothing; gamma 0 = off) is chosen on the
same validation slice (`evaluate_with_context`), and NDCG@10 on the test period is printed
with the chosen strength and without context. A customer's request time is the time of
their first order line in the period evaluated.

- Instacart: hour of day only (its order_hour_of_day is real; its dates are laid back from
  the days between orders, so its day of week is not).
- MovieLens-100k: hour of day and weekday/weekend of the rating time (UTC).
- Generator: hour and weekday; it plants no time structure, so context must not help there
  (the control).

Usage: python bench/context.py [--data-dir DIR] [--only NAME,...] [--budget SECONDS]
"""

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quality import INSTACART, MOVIELENS, generated, instacart, movielens

from mgrecs.engine.context import ContextKind
from mgrecs.engine.evaluation import Split, default_catalog, time_split, tune
from mgrecs.engine.evaluation.context import ContextPoint, evaluate_with_context
from mgrecs.engine.recipes import Recipe
from mgrecs.engine.records import Interaction

RECIPES = ("popularity-count", "popularity", "rp3beta", "ease", "itemknn")
MEANINGFUL_PERCENT = 3.0
"""Test NDCG@10 gain of the validation-chosen strength that would justify serving it."""


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable[[], list[Interaction]]
    test_days: int
    kinds: tuple[ContextKind, ...]
    repeat: bool = False
    real: bool = True


def cases(data_dir: Path) -> list[Case]:
    def gen() -> list[Interaction]:
        return generated(7, customers=3000, products=600, orders=40_000)

    def ml() -> list[Interaction]:
        return movielens(data_dir / MOVIELENS)

    def ic() -> list[Interaction]:
        return instacart(data_dir / INSTACART)

    return [
        Case("generator seed 7 (control)", gen, 21, ("hour", "weekday"), real=False),
        Case("MovieLens-100k", ml, 60, ("hour", "weekday")),
        Case("Instacart", ic, 14, ("hour",)),
        Case("Instacart --repeat", ic, 14, ("hour",), repeat=True),
    ]


def _point(point: ContextPoint) -> str:
    return "off" if point.gamma == 0 else f"g={point.gamma:g},s={point.smoothing:g}"


def run_case(case: Case, budget: float, seed: int) -> list[str]:
    """Print the case's table; returns the rows worth serving (>= MEANINGFUL_PERCENT)."""
    started = time.perf_counter()
    split: Split = time_split(case.load(), test_days=case.test_days, repeat=case.repeat)
    validation = split.validation
    print(
        f"\n## {case.name}: test {case.test_days} days, {split.users.size:,} test customers, "
        f"{validation.users.size if validation else 0:,} validation customers, "
        f"{split.n_items:,} products"
    )
    header = (
        f"{'context':<8} {'recipe':<17} {'params':<58} {'chosen':<14} {'val off':>8} "
        f"{'val ctx':>8} {'test off':>9} {'test ctx':>9} {'change':>8} {'ceiling':>8}"
    )
    print(header)
    print("-" * len(header))
    catalog = default_catalog()
    worth = []
    for name in RECIPES:

        def make(params: dict[str, Any], name: str = name) -> Recipe:
            return catalog.make(name, params, seed)

        params = tune(make, catalog.grids.get(name, [{}]), validation, budget).params
        shown = ", ".join(f"{k}={v}" for k, v in make(params).params().items() if v is not None)
        for kind in case.kinds:
            report = evaluate_with_context(make(params), split, kind)
            off, chosen = report.without.ndcg, report.with_context.ndcg
            gain = report.gain_percent
            ceiling = max(m.ndcg for m in report.test.values())
            val_off = report.validation.get(ContextPoint(0.0), float("nan"))
            val_ctx = report.validation.get(report.chosen, float("nan"))
            print(
                f"{kind:<8} {name:<17} {(shown or '-')[:58]:<58} {_point(report.chosen):<14} "
                f"{val_off:8.4f} {val_ctx:8.4f} {off:9.4f} {chosen:9.4f} "
                f"{'' if gain is None else f'{gain:+.1f}%':>8} "
                f"{'' if off == 0 else f'{(ceiling / off - 1) * 100:+.1f}%':>8}"
            )
            if case.real and gain is not None and gain >= MEANINGFUL_PERCENT:
                worth.append(f"{case.name} / {kind} / {name}: {gain:+.1f} %")
    print(f"({time.perf_counter() - started:.0f} s)")
    return worth


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".cache/bench-data"))
    parser.add_argument("--only", default="", help="comma-separated words; run matching cases")
    parser.add_argument("--budget", type=float, default=60.0, help="tuning seconds per recipe")
    parser.add_argument("--seed", type=int, default=7, help="seed of randomised recipes")
    args = parser.parse_args(argv)
    wanted = [word.strip().lower() for word in args.only.split(",") if word.strip()]
    print(
        "NDCG@10 on the test period; 'off' = no context (gamma 0), 'ctx' = the strength chosen "
        "on validation; 'ceiling' = the best grid point on test (hindsight, not a result)."
    )
    worth: list[str] = []
    for case in cases(args.data_dir):
        if wanted and not any(w in case.name.lower() for w in wanted):
            continue
        try:
            worth += run_case(case, args.budget, args.seed)
        except FileNotFoundError as error:
            print(f"\n## {case.name}\nskipped: {error} (run `make bench-context`)")
    print(
        f"\nDecision (>= +{MEANINGFUL_PERCENT:g} % test NDCG@10 on real data): "
        + ("; ".join(worth) if worth else "time context does not help on real data")
    )


if __name__ == "__main__":
    main(sys.argv[1:])
