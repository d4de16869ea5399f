"""The trade-off of margin against relevance (`mgrecs evaluate --objective margin`): for each
weight of `mgrecs.engine.margin`, the NDCG@k of the re-ordered lists on the test period and
the mean margin of their top k, so a merchandiser chooses `margin_weight` knowingly.

The candidates re-ordered are what serving re-orders: a recipe's best k x (1 + extra) (the
api asks its source for as many while the weight is above 0, `rules_extra_candidates`).
"""

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mgrecs.engine.arrays import Float64Array, IntArray
from mgrecs.engine.evaluation.evaluate import SCORE_CELLS, top_k
from mgrecs.engine.evaluation.metrics import ranking_metrics
from mgrecs.engine.evaluation.split import Split
from mgrecs.engine.margin import WEIGHTS, mean_margin, rerank_rows
from mgrecs.engine.recipes.base import ContextScoring, Recipe
from mgrecs.engine.recipes.support import history_context, score_rows


class MarginFileError(ValueError):
    """A catalogue file the margins cannot be read from."""


@dataclass(frozen=True)
class MarginPoint:
    weight: float
    ndcg: float
    mean_margin: float


@dataclass(frozen=True)
class MarginCurve:
    """One recipe's trade-off, weight 0 (relevance only) first."""

    recipe: str
    k: int
    candidates: int
    users: int
    products_with_margin: int
    points: list[MarginPoint]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "k": self.k,
            "candidates": self.candidates,
            "users": self.users,
            "products_with_margin": self.products_with_margin,
            "points": [
                {
                    "weight": p.weight,
                    "ndcg": round(p.ndcg, 6),
                    "mean_margin": round(p.mean_margin, 4),
                }
                for p in self.points
            ],
        }


def read_margins(path: Path) -> dict[str, float]:
    """Per product, price - cost from a catalogue CSV (header `product_id` and `price` with
    `cost`, or `margin`; the columns of `mgrecs backfill-products`); rows without them are
    skipped."""
    margins: dict[str, float] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if "product_id" not in fields or not ("margin" in fields or {"price", "cost"} <= fields):
            raise MarginFileError("needs columns product_id and margin, or price and cost")
        for line, row in enumerate(reader, start=2):
            product = (row.get("product_id") or "").strip()
            try:
                if (row.get("margin") or "").strip():
                    margin = float(row["margin"])
                elif (row.get("price") or "").strip() and (row.get("cost") or "").strip():
                    margin = float(row["price"]) - float(row["cost"])
                else:
                    continue
            except ValueError:
                raise MarginFileError(
                    f"line {line}: price, cost or margin is not a number"
                ) from None
            if product and math.isfinite(margin):
                margins[product] = margin
    return margins


def margin_array(item_ids: Sequence[str], margins: Mapping[str, float]) -> Float64Array:
    """Per item index, its margin (NaN when unknown)."""
    return np.array([margins.get(i, math.nan) for i in item_ids], dtype=np.float64)


def candidates_with_scores(recipe: Recipe, split: Split, n: int) -> tuple[IntArray, Float64Array]:
    """The fitted `recipe`'s best `n` per evaluated user of `split` and their scores (as
    `evaluate.recommend` ranks them)."""
    rows_all = split.train.matrix[split.users]
    context = (
        history_context(split.train, split.users) if isinstance(recipe, ContextScoring) else None
    )
    chunk = max(1, SCORE_CELLS // max(split.n_items, 1))
    tops, scores = [], []
    for start in range(0, split.users.size, chunk):
        rows = rows_all[start : start + chunk]
        chunk_context = None if context is None else context.take(start, start + chunk)
        scored = np.asarray(score_rows(recipe, rows, chunk_context), dtype=np.float32)
        top = top_k(scored, n, None if split.repeat else rows)
        tops.append(top)
        taken = np.take_along_axis(scored, np.maximum(top, 0), axis=1).astype(np.float64)
        taken[top < 0] = 0.0
        scores.append(taken)
    if not tops:
        return np.zeros((0, n), dtype=np.int64), np.zeros((0, n), dtype=np.float64)
    return np.vstack(tops), np.vstack(scores)


def margin_curve(
    recipe: Recipe,
    split: Split,
    margins: Mapping[str, float],
    k: int = 10,
    extra: float = 1.0,
    weights: Sequence[float] = WEIGHTS,
    *,
    name: str | None = None,
) -> MarginCurve:
    """Fit `recipe` on the training period and measure its lists re-ordered at each weight."""
    recipe.fit(split.train)
    return curve_of_fitted(recipe, split, margins, k, extra, weights, name=name)


def curve_of_fitted(
    recipe: Recipe,
    split: Split,
    margins: Mapping[str, float],
    k: int = 10,
    extra: float = 1.0,
    weights: Sequence[float] = WEIGHTS,
    *,
    name: str | None = None,
) -> MarginCurve:
    """`margin_curve` of a recipe already fitted on `split.train` (a retrain's chosen one)."""
    n = max(k + 1, round(k * (1.0 + extra)))
    top, scores = candidates_with_scores(recipe, split, n)
    per_item = margin_array(split.item_ids, margins)
    points = []
    for weight in weights:
        served = rerank_rows(top, scores, per_item, weight, k)
        metrics = ranking_metrics(served, split.truth, split.n_items)
        points.append(MarginPoint(weight, metrics.ndcg, mean_margin(served, per_item)))
    return MarginCurve(
        recipe=name or recipe.name,
        k=k,
        candidates=n,
        users=int(split.users.size),
        products_with_margin=int(np.count_nonzero(~np.isnan(per_item))),
        points=points,
    )


__all__ = [
    "MarginCurve",
    "MarginFileError",
    "MarginPoint",
    "candidates_with_scores",
    "curve_of_fitted",
    "margin_array",
    "margin_curve",
    "read_margins",
]
