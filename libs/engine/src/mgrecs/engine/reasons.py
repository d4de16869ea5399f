"""Why an item is recommended: the customer's purchases most similar to it ("bought X, Y").

Batch inference gives reasons to 25 million recommendations (25 for each of a million
customers), so they are found for a whole block of customers at once: each purchase's
co-purchase neighbours, kept where they are one of that customer's recommendations, then
the most similar purchases per recommendation, with a few numpy passes and no loop per
customer.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import Float64Array, IntArray, ObjectArray


@dataclass(frozen=True)
class ReasonNames:
    """How a reason names each item: first ("bought X"), then after another (", X")."""

    first: ObjectArray
    after: ObjectArray

    @classmethod
    def of(cls, item_ids: list[str]) -> "ReasonNames":
        return cls(
            np.array(["bought " + i for i in item_ids], dtype=object),
            np.array([", " + i for i in item_ids], dtype=object),
        )


def hit_reasons(
    history: sparse.csr_matrix,
    owner: IntArray,
    items: IntArray,
    similarity: sparse.csr_matrix,
    names: ReasonNames,
    *,
    most: int,
    default: str,
) -> list[str]:
    """The reason of each `items[n]` recommended to history row `owner[n]` (each pair once):
    the `most` history items most similar to it (by `similarity`, items x items; ties: lower
    index first), `default` when none is similar."""
    reasons = np.full(items.shape[0], default, dtype=object)
    if items.size == 0 or history.nnz == 0:
        return list(reasons.tolist())
    hit, source, weight = _links(history, owner, items, similarity)
    for place, (hits, sources) in enumerate(_best_per_hit(hit, source, weight, most)):
        if place == 0:
            reasons[hits] = names.first[sources]
        else:
            reasons[hits] = reasons[hits] + names.after[sources]
    return list(reasons.tolist())


def _links(
    history: sparse.csr_matrix, owner: IntArray, items: IntArray, similarity: sparse.csr_matrix
) -> tuple[IntArray, IntArray, Float64Array]:
    """(recommendation, history item, similarity) of every history item similar to a
    recommendation of its row, grouped by recommendation, history items ascending."""
    n_rows, n_items = history.shape
    if not history.has_sorted_indices:
        history = history.sorted_indices()
    # One row per (history row, history item): that item's neighbours, kept where they are
    # recommended to that history row; the values kept are the similarities.
    source_owner = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(history.indptr))
    recommended = sparse.csr_matrix(
        (np.ones(items.shape[0]), (owner, items)), shape=(n_rows, n_items)
    )
    links = sparse.coo_matrix(
        similarity[history.indices].multiply(recommended[source_owner])
    )  # in row order: by history row, then history item ascending
    wanted = owner * n_items + items
    by_key = np.argsort(wanted)
    found = source_owner[links.row] * n_items + links.col
    hit = by_key[np.searchsorted(wanted[by_key], found)]
    order = np.argsort(hit, kind="stable")  # keeps history items ascending within a hit
    source = history.indices[links.row].astype(np.int64)
    return hit[order], source[order], links.data[order].astype(np.float64)


def _best_per_hit(
    hit: IntArray, source: IntArray, weight: Float64Array, most: int
) -> list[tuple[IntArray, IntArray]]:
    """Per place 0..most-1, the (hit, source) pairs holding that place: the highest weight
    of the hit's remaining entries, the first (lowest source) among equals."""
    places: list[tuple[IntArray, IntArray]] = []
    if hit.size == 0:
        return places
    weight = weight.copy()
    starts = np.flatnonzero(np.r_[True, hit[1:] != hit[:-1]])
    sizes = np.diff(np.r_[starts, hit.shape[0]])
    position = np.arange(hit.shape[0])
    for _ in range(most):
        best = np.maximum.reduceat(weight, starts)
        at_best = weight == np.repeat(best, sizes)
        first = np.minimum.reduceat(np.where(at_best, position, hit.shape[0]), starts)
        first = first[best > -np.inf]
        if first.size == 0:
            break
        places.append((hit[first], source[first]))
        weight[first] = -np.inf
    return places
