"""Reasons of batch recommendations, found for a block of customers at once, against a
plain loop over each recommendation."""

import numpy as np
import numpy.typing as npt
import pytest
from scipy import sparse

from mgrecs.engine.reasons import ReasonNames, hit_reasons

ITEMS = 30


def reference(
    history: sparse.csr_matrix,
    owner: npt.NDArray[np.int64],
    items: npt.NDArray[np.int64],
    similarity: sparse.csr_matrix,
    names: list[str],
    most: int,
) -> list[str]:
    """Per recommendation: the history items with a stored similarity to it, most similar
    first, ties by lower index."""
    dense = similarity.toarray()
    stored = similarity.copy()
    stored.data[:] = 1.0
    reasons = []
    for row, item in zip(owner.tolist(), items.tolist(), strict=True):
        bought = history.indices[history.indptr[row] : history.indptr[row + 1]].tolist()
        similar = [i for i in bought if stored[i, item]]
        best = sorted(similar, key=lambda i: (-dense[i, item], i))[:most]
        reasons.append("bought " + ", ".join(names[i] for i in best) if best else "for you")
    return reasons


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("most", [1, 3])
def test_reasons_name_the_most_similar_history_items(seed: int, most: int) -> None:
    rng = np.random.default_rng(seed)
    names = [f"item{n}" for n in range(ITEMS)]
    similarity = sparse.random(ITEMS, ITEMS, density=0.3, format="csr", random_state=seed)
    similarity.data = rng.choice([0.2, 0.5, 0.9], similarity.nnz)  # many ties
    similarity.setdiag(0)
    similarity.eliminate_zeros()
    history = sparse.random(25, ITEMS, density=0.2, format="csr", random_state=seed + 5)
    history.data[:] = 1.0
    owner = np.repeat(np.arange(25), 6)
    items = np.concatenate([rng.choice(ITEMS, 6, replace=False) for _ in range(25)])
    got = hit_reasons(
        history, owner, items, similarity, ReasonNames.of(names), most=most, default="for you"
    )
    expected = reference(history, owner, items, similarity, names, most)
    assert got == expected
    assert any(r.count(",") == most - 1 for r in got if r != "for you")
    assert "for you" in got
    # Rows with their purchases stored out of order give the same reasons.
    shuffled = history.copy()
    for r in range(shuffled.shape[0]):
        lo, hi = shuffled.indptr[r], shuffled.indptr[r + 1]
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][::-1]
    shuffled.has_sorted_indices = False
    assert (
        hit_reasons(
            shuffled, owner, items, similarity, ReasonNames.of(names), most=most, default="for you"
        )
        == expected
    )
