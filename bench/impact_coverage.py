"""Calibration of the impact report's uplift interval (issue 20, planted-effect figure): the
synthetic customers of tests/store/test_impact.py (400 customers each shown 10 of 50
products, buying each with probability 0.03, plus the planted extra when shown) drawn with
300 seeds, scored by the report's own `uplift`: how often the 95 % interval covers the
planted value, and how often it excludes 0. Pure Python (the SQL that feeds `uplift` is
tested on the real database). Run: `.venv/bin/python bench/impact_coverage.py`.
"""

import random

from mgrecs.store.impact import CustomerRates
from mgrecs.store.impact_report import uplift

SEEDS, CUSTOMERS, PRODUCTS, SHOWN, BASE = 300, 400, 50, 10, 0.03


def main() -> None:
    for extra in (0.1, 0.02, 0.0):
        covered = excludes_zero = 0
        for seed in range(SEEDS):
            rng = random.Random(seed)
            rates = []
            for c in range(CUSTOMERS):
                shown = set(rng.sample(range(PRODUCTS), SHOWN))
                bought = [p for p in range(PRODUCTS) if rng.random() < BASE + extra * (p in shown)]
                hits = sum(p in shown for p in bought)
                rates.append(CustomerRates(f"C{c}", SHOWN, hits, len(bought) - hits))
            found = uplift(rates, PRODUCTS)
            assert found is not None
            d = found.difference
            covered += d.low <= extra <= d.high
            excludes_zero += d.low > 0 or d.high < 0
        print(
            f"planted {extra}: interval covers it {covered}/{SEEDS}, "
            f"excludes 0 {excludes_zero}/{SEEDS}"
        )


if __name__ == "__main__":
    main()
