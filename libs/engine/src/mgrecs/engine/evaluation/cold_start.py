"""The cold-start report of `mgrecs evaluate`: how the served lists do on products first
sold in the test period, without and with the "new in your categories" slot.

No recipe trained before the test period knows such a product, so the served recipe's lists
never hold one (without the slot both figures are 0 by construction, measured all the same).
With the slot, each customer's list gets `share` of its k slots filled as the api fills
them (`new_items.new_for_customer`, `new_items.place_new`): the products first sold in the
test period count as launched at its start (a catalogue knows a product from its launch;
an orders file does not say when that was), in the categories of the customer's training
purchases (the file's `category` column), those with the most buyers before the
customer's first test order first (what the api would know then).

Measured on the customers seen in training who bought one of these products in the test
period; their right answers are those products. A customer who is not a test user of the
split (they bought only new products) is served a full list of k organic items, as the
popularity fill gives in production. Figures: hit rate (share of those customers with at
least one right answer in their top k) and NDCG@k.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import IntArray
from mgrecs.engine.dataset import Lines
from mgrecs.engine.evaluation.metrics import hit_matrix, per_user
from mgrecs.engine.evaluation.split import Split
from mgrecs.engine.new_items import (
    NewProduct,
    category_weights,
    new_for_customer,
    new_slot_count,
    place_new,
)
from mgrecs.engine.records import ProductInfo, Scored

ORGANIC = "organic"
"""The reason of a served list's own items here (only whether an item is new matters)."""


@dataclass(frozen=True)
class ColdStartFigures:
    hit_rate: float
    ndcg: float

    def as_dict(self, k: int) -> dict[str, float]:
        return {"hit_rate": round(self.hit_rate, 6), f"ndcg@{k}": round(self.ndcg, 6)}


@dataclass(frozen=True)
class ColdStartReport:
    """The served recipe's lists on the products first sold in the test period."""

    recipe: str
    k: int
    share: float
    new_products: int
    """Products first sold in the test period."""
    customers: int
    """Customers seen in training who bought one of them in the test period."""
    without_slot: ColdStartFigures
    with_slot: ColdStartFigures

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "k": self.k,
            "new_items_share": self.share,
            "new_products": self.new_products,
            "customers": self.customers,
            "without_slot": self.without_slot.as_dict(self.k),
            "with_slot": self.with_slot.as_dict(self.k),
        }


def cold_start_report(
    lines: Lines,
    split: Split,
    recipe: str,
    top: IntArray,
    products: Mapping[str, ProductInfo],
    k: int,
    share: float,
) -> ColdStartReport:
    """The report for `split` made of all of `lines`, the served `recipe`'s `top` (its lists
    for `split.users`, item indices of `split.item_ids`), the products' categories."""
    boundary = split.test_from.timestamp()
    n_items = len(lines.item_ids)
    first_sold = np.full(n_items, np.inf)
    np.minimum.at(first_sold, lines.item, lines.time)
    is_new = first_sold >= boundary
    new_ids = [lines.item_ids[j] for j in np.flatnonzero(is_new).tolist()]
    empty = ColdStartFigures(0.0, 0.0)
    category = {p: info.category for p, info in products.items()}

    train_row = {c: n for n, c in enumerate(split.customer_ids)}
    new_line = is_new[lines.item] & (lines.time >= boundary)
    # Per customer seen in training: their new products (the right answers), and when
    # they first ordered in the test period (the request time).
    answers: dict[int, set[str]] = {}
    for c, j in zip(lines.customer[new_line].tolist(), lines.item[new_line].tolist(), strict=True):
        row = train_row.get(lines.customer_ids[c])
        if row is not None:
            answers.setdefault(row, set()).add(lines.item_ids[j])
    if not answers:
        return ColdStartReport(recipe, k, share, len(new_ids), 0, empty, empty)
    test_line = lines.time >= boundary
    request_time: dict[int, float] = {}
    for c, t in zip(
        lines.customer[test_line].tolist(), lines.time[test_line].tolist(), strict=True
    ):
        row = train_row.get(lines.customer_ids[c])
        if row is not None and row in answers:
            request_time[row] = min(request_time.get(row, np.inf), t)
    # Per new product, its buyers' first purchase times, sorted: buyers before a moment.
    first_buy: dict[tuple[str, int], float] = {}
    for c, j, t in zip(
        lines.customer[new_line].tolist(),
        lines.item[new_line].tolist(),
        lines.time[new_line].tolist(),
        strict=True,
    ):
        key = (lines.item_ids[j], c)
        first_buy[key] = min(first_buy.get(key, np.inf), t)
    buy_times: dict[str, list[float]] = {}
    for (product, _), t in first_buy.items():
        buy_times.setdefault(product, []).append(t)
    sorted_buys = {p: np.sort(np.asarray(ts)) for p, ts in buy_times.items()}

    user_position = {int(row): n for n, row in enumerate(split.users.tolist())}
    matrix = split.train.matrix
    slots = new_slot_count(k, share, k)
    rows = sorted(answers)
    served_without: list[list[str]] = []
    served_with: list[list[str]] = []
    for row in rows:
        at = user_position.get(row)
        if at is None:
            organic = [Scored(f"{ORGANIC}:{n}", 1.0 - n / (k + 1), ORGANIC) for n in range(k)]
        else:
            organic = [
                Scored(split.item_ids[j], 1.0 - n / (k + 1), ORGANIC)
                for n, j in enumerate(top[at].tolist())
                if j >= 0
            ]
        bought = [
            split.item_ids[j] for j in matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        ]
        weights = category_weights(category.get(p) for p in bought)
        now = request_time[row]
        candidates = [
            NewProduct(p, category.get(p), boundary, buyers=_before(sorted_buys.get(p), now))
            for p in new_ids
        ]
        listed = {s.item_id for s in organic} | set(bought)
        new = new_for_customer(candidates, weights, listed, slots)
        served_without.append([s.item_id for s in organic[:k]])
        served_with.append([s.item_id for s in place_new(organic, new, k, share)])
    return ColdStartReport(
        recipe,
        k,
        share,
        len(new_ids),
        len(rows),
        _figures(served_without, [answers[r] for r in rows], k),
        _figures(served_with, [answers[r] for r in rows], k),
    )


def _figures(lists: list[list[str]], answers: list[set[str]], k: int) -> ColdStartFigures:
    """Hit rate and mean NDCG@k of `lists` against `answers` (one per customer)."""
    index: dict[str, int] = {}
    top = np.full((len(lists), k), -1, dtype=np.int64)
    for n, listed in enumerate(lists):
        for place, product in enumerate(listed[:k]):
            top[n, place] = index.setdefault(product, len(index))
    truth_rows, truth_cols = [], []
    for n, wanted in enumerate(answers):
        for product in sorted(wanted):
            truth_rows.append(n)
            truth_cols.append(index.setdefault(product, len(index)))
    truth = sparse.csr_matrix(
        (np.ones(len(truth_rows)), (truth_rows, truth_cols)), shape=(len(lists), len(index))
    )
    hits = hit_matrix(top, truth)
    ndcg = per_user(top, truth)["ndcg"]
    return ColdStartFigures(float(hits.any(axis=1).mean()), float(ndcg.mean()))


def _before(times: np.ndarray | None, moment: float) -> int:
    """How many of `times` (sorted) are before `moment`."""
    return 0 if times is None else int(np.searchsorted(times, moment))
