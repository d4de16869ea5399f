"""The score scale every list shares, so a filled slot never outranks a personal signal.

Personalised hits live in (HIT_FLOOR, 1) and the popularity fill in [0, HIT_FLOOR]. In
similar items, content neighbours take (CONTENT_FLOOR, HIT_FLOOR] and the popularity fill
[0, CONTENT_FLOOR]. In a fill, a popular product scores its popularity
(`Popularity.scores`) times the band's ceiling, and a trending product the score of the fill
item before it, so lists stay sorted; `popular` is that fill with the ceiling 1. A promoted
product takes the score of the item it displaces (see `rules`).

A hit with raw recipe score x > 0 scores HIT_FLOOR + (1 - HIT_FLOOR) x / (x + scale), where
`scale` is the median, over training customers, of their best raw score (`score_scale`). One
scale for everyone (rather than each row divided by its own maximum) keeps scores comparable
across customers: a customer with a strong signal gets higher scores than one with a weak
signal, a typical customer's best item scores about 0.55, and the mapping is strictly
increasing, so the order is the recipe's own.
"""

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import Float64Array
from mgrecs.engine.order_history import OrderHistory
from mgrecs.engine.recipes import Recipe
from mgrecs.engine.recipes.base import ScoringContext
from mgrecs.engine.recipes.support import score_rows

HIT_FLOOR = 0.1
"""Boundary between the popularity band [0, HIT_FLOOR] and the personalised band above."""
CONTENT_FLOOR = 0.05
"""In similar items: content neighbours in (CONTENT_FLOOR, HIT_FLOOR], popularity below."""
CHUNK_CELLS = 8_000_000
"""Dense users x items score cells scored at once (64 MB of float64)."""
SCALE_SAMPLE = 2_000
"""Training customers (evenly spaced) whose best raw scores set the score scale."""


def hit_bands(raw: Float64Array, scale: float) -> Float64Array:
    """Positive raw recipe scores in the personalised band (HIT_FLOOR, 1)."""
    bands: Float64Array = HIT_FLOOR + (1.0 - HIT_FLOOR) * raw / (raw + scale)
    return bands


def similarity_band(similarity: float) -> float:
    """Map a co-occurrence similarity in (0, 1] into the band above popularity."""
    return HIT_FLOOR + (1.0 - HIT_FLOOR) * float(similarity)


def content_band(closeness: float) -> float:
    """Map a content closeness in [0, 1] into the band (CONTENT_FLOOR, HIT_FLOOR]."""
    return CONTENT_FLOOR + (HIT_FLOOR - CONTENT_FLOOR) * closeness


def raw_scores(
    recipe: Recipe, rows: sparse.csr_matrix, context: ScoringContext | None = None
) -> Float64Array:
    """The recipe's raw scores of every item for each binary history row, knowing `context`
    (regions for a region-aware recipe, orders and dates for a repeat one)."""
    scores: Float64Array = np.asarray(score_rows(recipe, rows, context), dtype=np.float64)
    return scores


def score_scale(
    recipe: Recipe, binary: sparse.csr_matrix, history: OrderHistory | None = None
) -> float:
    """Median best raw score of (up to SCALE_SAMPLE evenly spaced) training customers with
    a positive score, scored with their `history` when the model keeps it; 1.0 when there
    is none."""
    n_users, n_items = binary.shape
    if n_users == 0 or n_items == 0:
        return 1.0
    sample = np.unique(np.linspace(0, n_users - 1, min(n_users, SCALE_SAMPLE)).astype(np.int64))
    chunk = max(1, CHUNK_CELLS // n_items)
    best = np.concatenate(
        [
            raw_scores(
                recipe,
                binary[sample[start : start + chunk]],
                None if history is None else history.context(sample[start : start + chunk]),
            ).max(axis=1)
            for start in range(0, sample.shape[0], chunk)
        ]
    )
    positive = best[best > 0]
    return float(np.median(positive)) if positive.size else 1.0
