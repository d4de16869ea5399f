"""Top-k ranking metrics, computed for all evaluated users at once.

Recommendations arrive as a (users x k) matrix of item indices, best first, with -1 where
fewer than k items could be recommended; truth is a sparse (users x items) 0/1 matrix.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray


@dataclass(frozen=True)
class Metrics:
    """Means over the evaluated users (coverage: over the catalogue)."""

    k: int
    precision: float
    recall: float
    ndcg: float
    mrr: float
    coverage: float
    users: int

    def as_dict(self) -> dict[str, float | int]:
        """Keys as reports name them: precision@10, recall@10, ndcg@10, mrr, coverage, users."""
        values = asdict(self)
        k = values.pop("k")
        return {
            (f"{name}@{k}" if name in ("precision", "recall", "ndcg") else name): value
            for name, value in values.items()
        }


def hit_matrix(top: IntArray, truth: sparse.csr_matrix) -> BoolArray:
    """(users x k) True where the recommended item is in that user's truth."""
    n_users, n_items = truth.shape
    csr = sparse.csr_matrix(truth)
    csr.sum_duplicates()  # canonical: sorted indices, so row-major keys come out sorted
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(csr.indptr))
    truth_keys = rows * n_items + csr.indices.astype(np.int64)
    if truth_keys.size == 0:
        return np.zeros(top.shape, dtype=bool)
    top_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + top
    found = np.searchsorted(truth_keys, top_keys).clip(max=truth_keys.size - 1)
    # top == -1 (no item) would alias the previous user's last item: mask it out.
    hits: BoolArray = (truth_keys[found] == top_keys) & (top >= 0)
    return hits


def per_user(top: IntArray, truth: sparse.csr_matrix) -> dict[str, Float64Array]:
    """precision, recall, ndcg and reciprocal rank of each user (binary relevance)."""
    k = top.shape[1]
    hits = hit_matrix(top, truth).astype(np.float64)
    n_relevant = np.diff(sparse.csr_matrix(truth).indptr).astype(np.float64)
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[np.minimum(n_relevant, k).astype(int)]
    first = hits.argmax(axis=1)
    safe = np.maximum(n_relevant, 1.0)
    return {
        "precision": n_hits / k,
        "recall": n_hits / safe,
        "ndcg": np.divide(hits @ discounts, ideal, out=np.zeros_like(n_hits), where=ideal > 0),
        "mrr": np.where(n_hits > 0, 1.0 / (first + 1), 0.0),
    }


def ranking_metrics(top: IntArray, truth: sparse.csr_matrix, n_items: int) -> Metrics:
    """Mean precision@k, recall@k, NDCG@k, MRR over users, and catalogue coverage."""
    if top.shape[0] != truth.shape[0]:
        raise ValueError("one row of recommendations per row of truth is needed")
    scores = {name: float(v.mean()) if v.size else 0.0 for name, v in per_user(top, truth).items()}
    shown = np.unique(top[top >= 0])
    return Metrics(
        k=int(top.shape[1]),
        precision=scores["precision"],
        recall=scores["recall"],
        ndcg=scores["ndcg"],
        mrr=scores["mrr"],
        coverage=shown.size / n_items if n_items else 0.0,
        users=int(top.shape[0]),
    )
