"""Batch ranking: the vectorised per-row top-k against a plain per-row sort, and the model's
sparse path (a recipe with `score_sparse`) against its dense path, list for list."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import sparse

from mgrecs.engine import user_lists
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.recipes import Recipe, SparseScoring, TrainingData, make_recipe
from mgrecs.engine.records import Interaction, ProductInfo
from mgrecs.engine.rules import Rules
from mgrecs.engine.topk import TopK, dense_top_k, sparse_top_k

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def reference(
    scores: npt.NDArray[np.float64],
    stored: npt.NDArray[np.bool_],
    k: int,
    allowed: npt.NDArray[np.bool_],
    excluded: sparse.csr_matrix,
) -> list[list[tuple[int, float]]]:
    """Per row, sorted by (-score, column): stored positive scores of allowed columns."""
    result = []
    for r in range(scores.shape[0]):
        banned = set(excluded.indices[excluded.indptr[r] : excluded.indptr[r + 1]].tolist())
        entries = [
            (c, float(scores[r, c]))
            for c in range(scores.shape[1])
            if stored[r, c] and scores[r, c] > 0 and allowed[c] and c not in banned
        ]
        result.append(sorted(entries, key=lambda e: (-e[1], e[0]))[:k])
    return result


def tied(row: list[tuple[int, float]]) -> bool:
    return any(a[1] == b[1] for a, b in zip(row, row[1:], strict=False))


def as_lists(top: TopK) -> list[list[tuple[int, float]]]:
    bounds = top.indptr.tolist()
    items, scores = top.items.tolist(), top.scores.tolist()
    return [
        list(zip(items[lo:hi], scores[lo:hi], strict=True))
        for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]


def tied_scores(seed: int) -> sparse.csr_matrix:
    """Rows of 0 to 60 stored scores out of 80 columns: few distinct values, so many ties,
    some differing only below float32 precision, a few zero or negative."""
    rng = np.random.default_rng(seed)
    base = np.array([1.0, 0.5, 1 / 3, 0.25, 0.0, -0.5])
    rows = []
    for _ in range(40):
        row = np.zeros(80)
        columns = rng.choice(80, size=int(rng.integers(0, 60)), replace=False)
        nudge = 1.0 + 1e-12 * rng.integers(0, 3, columns.shape[0])  # same float32
        row[columns] = rng.choice(base, columns.shape[0]) * nudge
        rows.append((columns, row[columns]))
    return sparse.csr_matrix(
        (
            np.concatenate([values for _, values in rows]),
            np.concatenate([columns for columns, _ in rows]),
            np.r_[0, np.cumsum([columns.shape[0] for columns, _ in rows])],
        ),
        shape=(40, 80),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 5, 25, 100])
def test_sparse_top_k_is_a_plain_sort_per_row(seed: int, k: int) -> None:
    scores = tied_scores(seed)
    rng = np.random.default_rng(seed + 10)
    allowed = rng.random(80) < 0.8
    excluded = sparse.random(40, 80, density=0.1, format="csr", random_state=seed)
    dense = scores.toarray()
    stored = np.zeros(dense.shape, dtype=bool)
    stored[np.repeat(np.arange(40), np.diff(scores.indptr)), scores.indices] = True
    expected = reference(dense, stored, k, allowed, excluded)
    assert as_lists(sparse_top_k(scores, k, allowed, excluded)) == expected
    no_exclusion = sparse.csr_matrix((40, 80))
    assert as_lists(sparse_top_k(scores, k, allowed, None)) == reference(
        dense, stored, k, allowed, no_exclusion
    )
    ranked = reference(dense, stored, k + 1, allowed, excluded)
    assert any(tied(row) for row in ranked), "the data should rank tied scores"


@pytest.mark.parametrize("k", [1, 5, 25, 100])
def test_dense_top_k_is_a_plain_sort_per_row(k: int) -> None:
    dense = tied_scores(4).toarray()
    dense[3, :5] = np.nan  # no hit, like a zero
    rng = np.random.default_rng(4)
    allowed = rng.random(80) < 0.8
    excluded = sparse.random(40, 80, density=0.1, format="csr", random_state=4)
    stored = np.ones(dense.shape, dtype=bool)
    expected = reference(dense, stored, k, allowed, excluded)
    assert as_lists(dense_top_k(dense.copy(), k, allowed, excluded)) == expected


class DenseOnly:
    """A recipe with its `score_sparse` hidden, so the model ranks its dense scores."""

    def __init__(self, inner: Recipe) -> None:
        self.inner = inner
        self.name = inner.name

    def fit(self, data: TrainingData) -> "DenseOnly":
        self.inner.fit(data)
        return self

    def score(self, rows: sparse.csr_matrix) -> npt.NDArray[np.float32]:
        return self.inner.score(rows)

    def params(self) -> dict[str, Any]:
        return self.inner.params()


def twin_shop(seed: int = 9) -> tuple[list[Interaction], list[ProductInfo]]:
    """Random baskets over 40 products, where each of p0..p9 has a twin always bought with
    it by the same customers: twins score the same, so lists hold ties."""
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(240):
        region = ["north", "south", None][c % 3]
        basket = {f"p{p}" for p in rng.choice(40, size=int(rng.integers(1, 6)), replace=False)}
        basket |= {f"twin{p[1:]}" for p in basket if int(p[1:]) < 10}
        days = float(rng.uniform(0, 100))
        lines += [Interaction(f"c{c}", p, 1, NOW - timedelta(days=days), region) for p in basket]
    products = [
        ProductInfo(f"p{p}", f"item {p}", ["a", "b", "c"][p % 3], float(1 + p), p % 7 != 3)
        for p in range(42)  # p40, p41: in the catalogue, never bought
    ] + [ProductInfo(f"twin{p}", f"twin {p}", "a", 5.0) for p in range(10)]
    return lines, products


@pytest.mark.parametrize("name", ["rp3beta", "itemknn"])
def test_sparse_and_dense_scoring_give_the_same_lists(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, products = twin_shop()
    sparse_model = RecommenderModel.fit(lines, recipe=make_recipe(name), products=products)
    dense_model = RecommenderModel.fit(
        lines, recipe=DenseOnly(make_recipe(name)), products=products
    )
    assert isinstance(sparse_model.recipe, SparseScoring)
    assert not isinstance(dense_model.recipe, SparseScoring)
    monkeypatch.setattr(user_lists, "CHUNK_CELLS", 50 * 11)  # several chunks each
    filters = Rules(categories={"a", "b"}, min_price=2.0, max_price=30.0)
    promotion = Rules(promoted=["p40", "twin3", "p5"], promoted_share=0.3)
    both = replace(filters, promoted=promotion.promoted, promoted_share=promotion.promoted_share)
    tied = 0
    for rules in (Rules(), filters, promotion, both):
        for k in (3, 8, 60):
            for exclude in (True, False):
                expected = dense_model.recommend_all(k, exclude_purchased=exclude, rules=rules)
                got = sparse_model.recommend_all(k, exclude_purchased=exclude, rules=rules)
                assert got == expected
                tied += sum(
                    a.score == b.score and not a.reason.startswith(("popular", "promoted"))
                    for answer in got.values()
                    for a, b in zip(answer, answer[1:], strict=False)
                )
    assert tied, "the twins should give tied hits"
    for customer in sparse_model.customer_ids[::20]:
        history, region = sparse_model.history(customer), sparse_model.region_of(customer)
        single = sparse_model.recommend(history, region, 8, rules=filters)
        assert single == dense_model.recommend(history, region, 8, rules=filters)
        wanted = sparse_model.item_ids
        assert sparse_model.rank(history, region, wanted) == dense_model.rank(
            history, region, wanted
        )
