"""`make bench-train`: train the default recipe on 10 million generated interactions, then
top-25 for every customer through `RecommenderModel.recommend_all` (what batch inference
calls), printing wall seconds and peak memory of each phase.

Targets (issue 3): fit <= 5 min and <= 8 GiB peak; top-25 for all 1M customers <= 5 min.

The data is generated straight into numpy arrays (no order objects: 10M of them would take
longer than the training) with the generator's kind of planted structure: Zipf popularity
over the catalogue, and each customer's purchases drawn mostly from two personal taste
groups. The model is fitted from it as batch training fits one (recipe, co-occurrence,
popularity, catalogue with a few withdrawn products), then asked for every customer's
top-25, `--per-call` customers per `recommend_all` call, purchased products excluded.

Usage: python bench/train_scale.py [--customers N] [--items N] [--interactions N]
       [--recipe NAME] [--per-call N] [--score-customers N]
"""

import argparse
import resource
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.dataset import Dataset
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.recipes import TrainingData, make_recipe
from mgrecs.engine.records import ProductInfo

IntArray = npt.NDArray[np.int64]
T = TypeVar("T")

ZIPF_EXPONENT = 1.1
TASTE_GROUP_SIZE = 50
TASTES_PER_CUSTOMER = 2
PERSONAL_SHARE = 0.7
"""Share of a customer's purchases drawn from their own taste groups (the rest: global)."""
QUANTITY_WEIGHTS = (0.62, 0.24, 0.09, 0.03, 0.02)
REGIONS = 4
HISTORY_DAYS = 180.0
CATEGORIES = 50
INACTIVE_SHARE = 0.02


def peak_gib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def phase(label: str, work: Callable[[], T]) -> tuple[T, float]:
    """Run `work`, print its wall time and the peak memory so far; return its result."""
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    print(f"{label:<34} {seconds:8.1f} s   peak RSS {peak_gib():5.2f} GiB", flush=True)
    return result, seconds


def _draw_items(
    rng: np.random.Generator,
    customer: IntArray,
    tastes: IntArray,
    groups: IntArray,
    group_cumulative: npt.NDArray[np.float64],
    cumulative: npt.NDArray[np.float64],
) -> IntArray:
    """One item per draw: from one of the customer's taste groups (popular members more
    often) with PERSONAL_SHARE, else from the whole catalogue by popularity."""
    n = customer.size
    items = np.searchsorted(cumulative, rng.random(n) * cumulative[-1])
    personal = rng.random(n) < PERSONAL_SHARE
    taste = tastes[customer[personal], rng.integers(0, TASTES_PER_CUSTOMER, personal.sum())]
    # group_cumulative holds each group's cumulative shares shifted by the group's index,
    # so one searchsorted finds the member of every draw's own group.
    slot = np.searchsorted(group_cumulative, taste + rng.random(taste.size))
    items[personal] = groups.ravel()[np.minimum(slot, groups.size - 1)]
    drawn: IntArray = items.astype(np.int64)
    return drawn


def generate(customers: int, items: int, interactions: int, seed: int) -> TrainingData:
    """A customers x items matrix with `interactions` distinct entries, log1p(quantity)."""
    rng = np.random.default_rng(seed)
    popularity = np.empty(items)
    popularity[rng.permutation(items)] = np.arange(1, items + 1, dtype=np.float64) ** (
        -ZIPF_EXPONENT
    )
    cumulative = np.cumsum(popularity)
    n_groups = max(1, items // TASTE_GROUP_SIZE)
    groups = rng.permutation(items)[: n_groups * TASTE_GROUP_SIZE].reshape(n_groups, -1)
    shares = popularity[groups] / popularity[groups].sum(axis=1, keepdims=True)
    group_cumulative = np.asarray(
        np.cumsum(shares, axis=1) + np.arange(n_groups)[:, None], dtype=np.float64
    ).ravel()
    tastes = rng.integers(0, n_groups, (customers, TASTES_PER_CUSTOMER))

    keys = np.zeros(0, dtype=np.int64)
    while keys.size < interactions:  # top up what de-duplication removed
        missing = interactions - keys.size
        # Basket sizes: geometric (many small, a long tail), mean interactions / customers.
        sizes = rng.geometric(min(1.0, customers / missing), customers)
        customer = np.repeat(np.arange(customers, dtype=np.int64), sizes)
        item = _draw_items(rng, customer, tastes, groups, group_cumulative, cumulative)
        keys = np.unique(np.concatenate([keys, customer * items + item]))
    # Drop the surplus at random positions (sorted order kept: rows stay grouped).
    keys = np.delete(keys, rng.choice(keys.size, keys.size - interactions, replace=False))
    quantity = rng.choice(len(QUANTITY_WEIGHTS), keys.size, p=QUANTITY_WEIGHTS) + 1
    rows = keys // items
    indptr = np.searchsorted(rows, np.arange(customers + 1)).astype(np.int64)
    matrix = sparse.csr_matrix(
        (np.log1p(quantity).astype(np.float32), (keys % items).astype(np.int32), indptr),
        shape=(customers, items),
    )
    return TrainingData(matrix=matrix)


def as_dataset(data: TrainingData, seed: int) -> Dataset:
    """The generated matrix as the model's indexed dataset: one order line per entry,
    spread over HISTORY_DAYS, each customer in one of REGIONS regions."""
    rng = np.random.default_rng(seed)
    matrix = data.matrix
    customers, items = matrix.shape
    line_customer = np.repeat(np.arange(customers, dtype=np.int64), np.diff(matrix.indptr))
    customer_region = rng.integers(0, REGIONS, customers).astype(np.int64)
    return Dataset(
        customer_ids=[f"c{n:07d}" for n in range(customers)],
        item_ids=[f"p{n:06d}" for n in range(items)],
        regions=[f"region-{n}" for n in range(REGIONS)],
        matrix=sparse.csr_matrix(matrix, dtype=np.float64),
        customer_region=customer_region,
        line_customer=line_customer,
        line_item=matrix.indices.astype(np.int64),
        line_region=customer_region[line_customer],
        line_time=1.7e9 + rng.random(matrix.nnz) * HISTORY_DAYS * 86_400.0,
    )


def products(items: int, seed: int) -> list[ProductInfo]:
    """Catalogue metadata: CATEGORIES categories, INACTIVE_SHARE of products withdrawn
    (never recommended, so the rules' mask is not all-true)."""
    rng = np.random.default_rng(seed)
    active = rng.random(items) >= INACTIVE_SHARE
    return [
        ProductInfo(f"p{n:06d}", None, f"category-{n % CATEGORIES}", None, bool(active[n]))
        for n in range(items)
    ]


def recommend_everyone(
    model: RecommenderModel, customers: list[str], k: int, per_call: int
) -> tuple[int, int]:
    """Top-k through `recommend_all` for `per_call` customers at a time (as batch inference
    calls it), each answer dropped once counted; returns (customers answered, slots
    filled from popularity rather than a personal hit)."""
    answered = filled = 0
    for start in range(0, len(customers), per_call):
        answers = model.recommend_all(k, customers[start : start + per_call])
        answered += len(answers)
        filled += sum(s.reason.startswith("popular") for a in answers.values() for s in a)
    return answered, filled


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--recipe", default="rp3beta")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument(
        "--per-call", type=int, default=100_000, help="customers per recommend_all call"
    )
    parser.add_argument("--score-customers", type=int, default=None, help="score only N")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print(
        f"{args.customers:,} customers, {args.items:,} products, "
        f"{args.interactions:,} interactions; recipe {args.recipe}; top-{args.k}",
        flush=True,
    )
    dataset, _ = phase(
        "generate (numpy)",
        lambda: as_dataset(
            generate(args.customers, args.items, args.interactions, args.seed), args.seed
        ),
    )
    baskets = np.diff(dataset.matrix.indptr)
    print(
        f"  {dataset.matrix.nnz:,} entries; products per customer mean {baskets.mean():.1f}, "
        f"max {baskets.max()}; customers with none {int((baskets == 0).sum()):,}",
        flush=True,
    )
    recipe = make_recipe(args.recipe)
    catalogue = products(args.items, args.seed)
    model, fit_seconds = phase(
        f"fit model: {args.recipe} {recipe.params()}, co-occurrence, popularity",
        lambda: RecommenderModel.fit_dataset(dataset, recipe=recipe, products=catalogue),
    )
    fit_peak = peak_gib()
    customers = model.customer_ids[: args.score_customers]
    (answered, filled), score_seconds = phase(
        f"recommend_all top-{args.k}, {len(customers):,} customers ({args.per_call:,} per call)",
        lambda: recommend_everyone(model, customers, args.k, args.per_call),
    )
    print(
        f"  {answered:,} customers answered, {answered * args.k - filled:,} personal hits, "
        f"{filled:,} slots filled from popularity"
    )
    per_million = score_seconds * 1_000_000 / max(1, len(customers))
    print(
        f"targets: fit {fit_seconds:.0f} s <= 300 s: {'yes' if fit_seconds <= 300 else 'NO'}; "
        f"peak after fit {fit_peak:.2f} GiB <= 8: {'yes' if fit_peak <= 8 else 'NO'}; "
        f"top-{args.k} {per_million:.0f} s per million customers <= 300 s: "
        f"{'yes' if per_million <= 300 else 'NO'}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
