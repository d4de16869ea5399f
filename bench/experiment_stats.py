"""CPU cost of the experiment report's revenue bootstrap (issue 20, item 5): 2,000 seeded
resamples of two arms' customers (10 % buy, exponential spend), per arm size. Process CPU
time, so the figure holds on a shared machine. Run: `.venv/bin/python bench/experiment_stats.py`.
"""

import time

import numpy as np

from mgrecs.api.experiment_stats import bootstrap_means

SIZES = (5_000, 100_000, 500_000)


def main() -> None:
    rng = np.random.default_rng(1)
    for n in SIZES:
        arms = [np.where(rng.random(n) < 0.1, rng.exponential(50, n), 0.0) for _ in range(2)]
        started = time.process_time()
        bootstrap_means(arms[0], arms[1])
        print(f"2 x {n:>7,} customers: {time.process_time() - started:6.2f} CPU s")


if __name__ == "__main__":
    main()
