"""Margin as an objective: a served list re-ordered by a blend of relevance and the
products' expected margin (price - cost), so a merchandiser can trade one for the other
(setting `margin_weight`, docs/concepts.md "Merchandising").

Over the candidates of one list, best first: relevance is the item's score and margin the
product's margin (a product of unknown margin counts as the lowest margin among the
candidates), each scaled to 0-1 by min-max over the candidates (all equal: 0), and

    blended = (1 - weight) x relevance + weight x margin

orders the list (highest first; ties keep the list's order). Weight 0 leaves the list as it
is; weight 1 orders it by margin. Items keep their scores and reasons: only the order moves.
"""

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.records import Scored

WEIGHTS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
"""The weights `mgrecs evaluate --objective margin` tries: 0, 0.1, ..., 1."""

T = TypeVar("T")


def _scaled(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    if high <= low:
        return [0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def blend_order(
    relevance: Sequence[float], margins: Sequence[float | None], weight: float
) -> list[int]:
    """The positions of the candidates (best first) in blended order (module doc)."""
    n = len(relevance)
    if weight <= 0.0 or n < 2:
        return list(range(n))
    known = [m for m in margins if m is not None]
    floor = min(known) if known else 0.0
    raw = [floor if m is None else m for m in margins]
    if weight >= 1.0:  # by margin alone, exactly (no rounding of the scaling)
        return sorted(range(n), key=lambda i: (-raw[i], i))
    margin = _scaled(raw)
    rel = _scaled(list(relevance))
    blended = [(1.0 - weight) * r + weight * m for r, m in zip(rel, margin, strict=True)]
    return sorted(range(n), key=lambda i: (-blended[i], i))


def rerank(items: Sequence[Scored], margins: Mapping[str, float], weight: float) -> list[Scored]:
    """`items` (best first) re-ordered by relevance blended with margin (module doc)."""
    order = blend_order([s.score for s in items], [margins.get(s.item_id) for s in items], weight)
    return [items[i] for i in order]


def _scaled_rows(values: Float64Array, valid: BoolArray) -> Float64Array:
    """Per row, min-max over the valid cells (all equal: 0); invalid cells 0."""
    low = np.where(valid, values, np.inf).min(axis=1, keepdims=True)
    high = np.where(valid, values, -np.inf).max(axis=1, keepdims=True)
    span = high - low
    spread = np.isfinite(span) & (span > 0)
    safe = np.where(spread, span, 1.0)
    scaled = np.where(spread & valid, (values - np.where(spread, low, 0.0)) / safe, 0.0)
    return np.asarray(scaled, dtype=np.float64)


def rerank_rows(
    top: IntArray, scores: Float64Array, margins: Float64Array, weight: float, k: int
) -> IntArray:
    """Evaluation's batch form of `rerank`: per row of `top` (item indices, best first, -1 =
    none, after the valid ones) with their `scores`, the first `k` in blended order;
    `margins` per item index (NaN: unknown)."""
    rows = np.full((top.shape[0], k), -1, dtype=np.int64)
    width = min(k, top.shape[1])
    if weight <= 0.0 or top.shape[1] < 2:
        rows[:, :width] = top[:, :width]
        return rows
    valid = top >= 0
    raw = np.where(valid, margins[np.maximum(top, 0)], np.nan)
    known = valid & ~np.isnan(raw)
    floor = np.where(known, raw, np.inf).min(axis=1, keepdims=True)
    floor = np.where(np.isfinite(floor), floor, 0.0)
    raw = np.where(known, raw, floor)
    if weight >= 1.0:
        key = np.where(valid, -raw, np.inf)
    else:
        relevance = _scaled_rows(np.asarray(scores, dtype=np.float64), valid)
        blended = (1.0 - weight) * relevance + weight * _scaled_rows(raw, valid)
        key = np.where(valid, -blended, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :width]
    rows[:, :width] = np.take_along_axis(top, order, axis=1)
    return rows


def mean_margin(top: IntArray, margins: Float64Array) -> float:
    """The mean margin of the items in `top` (-1 and unknown margins left out; 0.0 if none)."""
    items = top[top >= 0]
    values = margins[items] if items.size else np.empty(0)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else 0.0


__all__ = ["WEIGHTS", "blend_order", "mean_margin", "rerank", "rerank_rows"]
