"""`make bench-train`: train the default recipe on 10 million generated interactions, then
score top-25 for every customer, printing wall seconds and peak memory of each phase.

Targets (issue 3): fit <= 5 min and <= 8 GiB peak; top-25 for all 1M customers <= 5 min.

The data is generated straight into numpy arrays (no order objects: 10M of them would take
longer than the training) with the generator's kind of planted structure: Zipf popularity
over the catalogue, and each customer's purchases drawn mostly from two personal taste
groups. Scoring goes a chunk of customers at a time, purchased products excluded; a recipe
whose scores are sparse (a neighbour graph: `score_sparse`) is ranked from its candidates
only, the others through the dense `score` and `top_k` the evaluation uses.

Usage: python bench/train_scale.py [--customers N] [--items N] [--interactions N]
       [--recipe NAME] [--dense]
"""

import argparse
import resource
import sys
import time
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.evaluation.evaluate import top_k
from mgrecs.engine.recipes import Recipe, TrainingData, make_recipe

IntArray = npt.NDArray[np.int64]
T = TypeVar("T")

ZIPF_EXPONENT = 1.1
TASTE_GROUP_SIZE = 50
TASTES_PER_CUSTOMER = 2
PERSONAL_SHARE = 0.7
"""Share of a customer's purchases drawn from their own taste groups (the rest: global)."""
QUANTITY_WEIGHTS = (0.62, 0.24, 0.09, 0.03, 0.02)


@runtime_checkable
class SparseScorer(Protocol):
    def score_sparse(self, rows: sparse.csr_matrix) -> sparse.csr_matrix: ...


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


def sparse_top_k(scores: sparse.csr_matrix, k: int) -> IntArray:
    """Each row's k best stored (positive) entries, best first; -1 where fewer exist."""
    n_rows = scores.shape[0]
    counts = np.diff(scores.indptr)
    width = max(int(counts.max(initial=0)), k)
    row = np.repeat(np.arange(n_rows), counts)
    position = np.arange(scores.nnz) - np.repeat(scores.indptr[:-1], counts)
    padded = np.full((n_rows, width), -np.inf, dtype=np.float32)
    padded[row, position] = scores.data
    columns = np.full((n_rows, width), -1, dtype=np.int64)
    columns[row, position] = scores.indices
    best = np.argpartition(-padded, k - 1, axis=1)[:, :k]
    best_scores = np.take_along_axis(padded, best, axis=1)
    best_columns = np.take_along_axis(columns, best, axis=1)
    order = np.lexsort((best_columns, -best_scores), axis=1)
    top = np.take_along_axis(best_columns, order, axis=1)
    top[np.take_along_axis(best_scores, order, axis=1) <= 0] = -1
    return top


def recommend_all(
    recipe: Recipe, matrix: sparse.csr_matrix, k: int, chunk: int, dense: bool
) -> int:
    """Top-k for every row, purchased items excluded; returns how many rows got k items."""
    full = 0
    sparse_path = isinstance(recipe, SparseScorer) and not dense
    for start in range(0, matrix.shape[0], chunk):
        rows = matrix[start : start + chunk]
        if sparse_path:
            assert isinstance(recipe, SparseScorer)
            scores = recipe.score_sparse(rows)
            purchased = rows.copy()
            purchased.data[:] = 1.0
            scores = scores - scores.multiply(purchased)  # purchased entries become 0
            scores.eliminate_zeros()
            top = sparse_top_k(scores.tocsr(), k)
        else:
            top = top_k(np.asarray(recipe.score(rows), dtype=np.float32), k, rows)
        full += int((top[:, -1] >= 0).sum())
    return full


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--recipe", default="rp3beta")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--chunk", type=int, default=4096, help="customers scored at once")
    parser.add_argument("--score-customers", type=int, default=None, help="score only N")
    parser.add_argument("--dense", action="store_true", help="score through dense `score`")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print(
        f"{args.customers:,} customers, {args.items:,} products, "
        f"{args.interactions:,} interactions; recipe {args.recipe}; top-{args.k}",
        flush=True,
    )
    data, _ = phase(
        "generate (numpy)",
        lambda: generate(args.customers, args.items, args.interactions, args.seed),
    )
    matrix = data.matrix
    baskets = np.diff(matrix.indptr)
    print(
        f"  {matrix.nnz:,} entries; products per customer mean {baskets.mean():.1f}, "
        f"max {baskets.max()}; customers with none {int((baskets == 0).sum()):,}",
        flush=True,
    )
    recipe = make_recipe(args.recipe)
    _, fit_seconds = phase(f"fit {args.recipe} {recipe.params()}", lambda: recipe.fit(data))
    fit_peak = peak_gib()
    scored = matrix if args.score_customers is None else matrix[: args.score_customers]
    path = "dense score + top_k" if args.dense or not isinstance(recipe, SparseScorer) else "sparse"
    full, score_seconds = phase(
        f"score top-{args.k}, {scored.shape[0]:,} customers ({path})",
        lambda: recommend_all(recipe, scored, args.k, args.chunk, args.dense),
    )
    print(f"  customers with a full top-{args.k}: {full:,} of {scored.shape[0]:,}")
    per_million = score_seconds * 1_000_000 / max(1, scored.shape[0])
    print(
        f"targets: fit {fit_seconds:.0f} s <= 300 s: {'yes' if fit_seconds <= 300 else 'NO'}; "
        f"peak after fit {fit_peak:.2f} GiB <= 8: {'yes' if fit_peak <= 8 else 'NO'}; "
        f"scoring {per_million:.0f} s per million customers <= 300 s: "
        f"{'yes' if per_million <= 300 else 'NO'}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
