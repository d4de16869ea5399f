"""Per-customer lists: top-k for one history or a whole batch of customers, and re-ranking.

The recipe scores the customer's purchase row, built from the history the caller passes, so
purchases made since training fold in at once, without a retrain. Rows are binary (bought or
not), in training and in scoring alike, because a history arrives as a list of product ids.
A chunk of customers is ranked at once (`topk`, `reasons`: no loop per customer until the
lists are built), from the recipe's stored candidates when it scores sparsely
(`SparseScoring`). A repeat recipe (`uses_history`: buy-again, a blend with it) also needs
how many orders held each product and when: the model keeps the training customers'
(`OrderHistory`) and scores a known customer with them, as evaluation did when it chose the
recipe. Hits are explained by the co-occurring history items ("bought X"); the popularity
fill (`fill`) tops a list up; the rules apply to every list the same way. Scores: `bands`.
"""

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.bands import CHUNK_CELLS, HIT_FLOOR, hit_bands, raw_scores
from mgrecs.engine.catalog import Catalog
from mgrecs.engine.fill import FillOrder, PopularityFill
from mgrecs.engine.ids import Ids
from mgrecs.engine.order_history import OrderHistory
from mgrecs.engine.reasons import ReasonNames, hit_reasons
from mgrecs.engine.recipes import Recipe, SparseScoring
from mgrecs.engine.recipes.base import ScoringContext
from mgrecs.engine.recipes.support import sparse_scores
from mgrecs.engine.records import Scored
from mgrecs.engine.rules import Rules, allowed_products, eligible_promoted, insert_promoted
from mgrecs.engine.topk import TopK, dense_top_k, sparse_top_k

PERSONAL_REASON = "recommended for you"
"""Reason of a hit that no history item co-occurs with (a latent-factor or longer-path hit)."""
REASON_ITEMS = 3
"""How many of the history items that led to a recommendation its reason names."""
SPARSE_ROW_CELLS = 2_000
"""Score cells a customer counts for in a chunk when the recipe scores sparsely: its
candidates (basket size x neighbours per item), with room to spare."""


@dataclass(frozen=True, eq=False)
class UserLists:
    """The per-customer lists of a fitted recipe over the training customers' rows."""

    ids: Ids
    binary: sparse.csr_matrix
    """The training customers' binary purchase rows."""
    customer_region: IntArray
    recipe: Recipe
    score_scale: float
    """See `bands.score_scale`."""
    catalog: Catalog
    order_history: OrderHistory | None
    similarity: sparse.csr_matrix
    """Item-to-item co-occurrence: the reasons of the hits."""
    fill: PopularityFill

    def recommend(
        self,
        history: list[str],
        region: int,
        k: int,
        exclude_purchased: bool,
        rules: Rules,
        customer_id: str | None,
        now: float | None,
    ) -> list[Scored]:
        """Top-k for a customer with this purchase history; popularity in `region` fills
        up. `customer_id` names a training customer, whose stored order counts and dates a
        recipe that `uses_history` scores with (see `_request_context`; `now`: the request
        time, epoch seconds; None: the training data's end)."""
        if k <= 0 or not self.ids.item_ids:
            return []
        items = self.ids.known_items(history)
        rows = self._rows_for(items)
        allowed = allowed_products(self.catalog, rules)
        context = self._request_context(history, items, region, customer_id, now)
        return self._recommend_rows(rows, context, exclude_purchased, k, rules, allowed, {})[0]

    def recommend_all(
        self, k: int, rows: IntArray, exclude_purchased: bool, rules: Rules
    ) -> dict[str, list[Scored]]:
        """Vectorised top-k for the training customers `rows` (batch inference): what
        `recommend` gives each of them, their history and region those of training."""
        customer_ids = self.ids.customer_ids
        if k <= 0 or not self.ids.item_ids:
            return {customer_ids[r]: [] for r in rows}
        allowed = allowed_products(self.catalog, rules)
        orders: dict[int, FillOrder] = {}  # filtered fill orders, shared by the chunks
        result: dict[str, list[Scored]] = {}
        n_items = len(self.ids.item_ids)
        sparse_rows = isinstance(self.recipe, SparseScoring)
        row_cells = min(n_items, SPARSE_ROW_CELLS) if sparse_rows else n_items
        chunk = max(1, CHUNK_CELLS // row_cells)
        with _collector_paused():
            for start in range(0, rows.shape[0], chunk):
                block = rows[start : start + chunk]
                context = self._stored_context(block)
                answers = self._recommend_rows(
                    self.binary[block], context, exclude_purchased, k, rules, allowed, orders
                )
                for row, answer in zip(block.tolist(), answers, strict=True):
                    result[customer_ids[row]] = answer
        return result

    def rank(
        self,
        history: list[str],
        region: int,
        item_ids: list[str],
        customer_id: str | None,
        now: float | None,
    ) -> list[Scored]:
        """Re-rank `item_ids` for a customer (`customer_id`, `now`: as in `recommend`);
        unknown items go last, inactive ones after them (never recommended, but none is
        dropped)."""
        items = self.ids.known_items(history)
        row = self._rows_for(items)
        context = self._request_context(history, items, region, customer_id, now)
        hits = raw_scores(self.recipe, row, context)[0] if self.ids.item_ids else np.zeros(0)
        bands = hit_bands(hits, self.score_scale)
        active = self.catalog.active
        wanted = [self.ids.item_index.get(item_id) for item_id in item_ids]
        hit_items = np.array(
            sorted({j for j in wanted if j is not None and hits[j] > 0 and active[j]}),
            dtype=np.int64,
        )
        owner = np.zeros(hit_items.shape[0], dtype=np.int64)
        reasons = dict(
            zip(hit_items.tolist(), self._hit_reasons(row, owner, hit_items), strict=True)
        )
        known: list[Scored] = []
        unknown: list[Scored] = []
        inactive: list[Scored] = []
        for item_id, j in zip(item_ids, wanted, strict=True):
            catalogued = self.catalog.index.get(item_id)
            if catalogued is not None and not active[catalogued]:
                inactive.append(Scored(item_id, 0.0, "inactive product"))
            elif j is None:
                unknown.append(Scored(item_id, 0.0, "unknown item"))
            elif hits[j] > 0:
                known.append(Scored(item_id, float(bands[j]), reasons.get(j, PERSONAL_REASON)))
            else:
                known.append(self.fill.popular_item(region, j, HIT_FLOOR))
        known.sort(key=lambda s: -s.score)  # stable: ties keep the caller's order
        return known + unknown + inactive

    def _rows_for(self, items: IntArray) -> sparse.csr_matrix:
        """A one-customer binary row, built exactly like a row of the training matrix."""
        return sparse.csr_matrix(
            (np.ones(items.shape[0]), items, np.array([0, items.shape[0]])),
            shape=(1, len(self.ids.item_ids)),
        )

    def _stored_context(self, customers: IntArray) -> ScoringContext:
        """The scoring context of training customers' rows: their regions, and their order
        counts and dates when the model keeps them (`OrderHistory`)."""
        regions = self.customer_region[customers]
        if self.order_history is None:
            return ScoringContext(regions=regions)
        return self.order_history.context(customers, regions)

    def _request_context(
        self,
        history: list[str],
        items: IntArray,
        region: int,
        customer_id: str | None,
        now: float | None,
    ) -> ScoringContext:
        """The scoring context of one row of `items` built from `history`: its region; for
        a training customer of a model that keeps the order history, their stored orders
        and dates, and each further mention of a product in `history` (an event since
        training) as one more order at `now`. Anyone else's row is scored from the row
        alone (one order per product, no date)."""
        regions = np.array([region], dtype=np.int64)
        row = None if customer_id is None else self.ids.customer_index.get(customer_id)
        if self.order_history is None or row is None:
            return ScoringContext(regions=regions)
        named = Counter(history)
        item_ids = self.ids.item_ids
        mentions = np.array([named[item_ids[j]] for j in items.tolist()], dtype=np.int64)
        return self.order_history.customer_context(row, items, mentions, region, now)

    @cached_property
    def _reason_names(self) -> ReasonNames:
        return ReasonNames.of(self.ids.item_ids)

    def _top_hits(
        self,
        rows: sparse.csr_matrix,
        context: ScoringContext,
        exclude_purchased: bool,
        k: int,
        allowed: BoolArray,
    ) -> TopK:
        """Each history row's k best positive raw scores among `allowed` items (purchases
        excluded or not), best first, ties by index. A recipe that scores sparsely is ranked
        from its stored candidates, any other from its dense scores: same lists either way."""
        excluded = rows if exclude_purchased else None
        allowed_items = allowed[: len(self.ids.item_ids)]
        if isinstance(self.recipe, SparseScoring):
            scores = sparse_scores(self.recipe, rows, context)
            return sparse_top_k(scores, k, allowed_items, excluded)
        dense: Float64Array = raw_scores(self.recipe, rows, context)
        return dense_top_k(dense, k, allowed_items, excluded)

    def _recommend_rows(
        self,
        rows: sparse.csr_matrix,
        context: ScoringContext,
        exclude_purchased: bool,
        k: int,
        rules: Rules,
        allowed: BoolArray,
        orders: dict[int, FillOrder],
    ) -> list[list[Scored]]:
        """Top-k for each binary history row: the one code path of single and batch calls.
        `context`: the rows' regions (and what else is known of them); `allowed`: `rules`
        as a catalogue mask; `orders`: a cache of fill orders per region. The hits of all
        rows are built at once; only rows short of k hits (popularity fill) or with promoted
        products get more per-row work."""
        assert context.regions is not None  # every context the model builds has them
        regions: list[int] = context.regions.tolist()
        top = self._top_hits(rows, context, exclude_purchased, k, allowed)
        hits = list(
            map(
                Scored,
                self.ids.item_names[top.items].tolist(),
                hit_bands(top.scores, self.score_scale).tolist(),
                self._hit_reasons(rows, top.owners(), top.items),
            )
        )
        for region in set(regions) - orders.keys():
            orders[region] = self.fill.order(region, allowed)
        promoting = rules.promoted_share > 0 and bool(rules.promoted)
        bounds = top.indptr.tolist()
        answers = []
        for r, region in enumerate(regions):
            answer = hits[bounds[r] : bounds[r + 1]]
            if len(answer) < k or promoting:
                history = rows.indices[rows.indptr[r] : rows.indptr[r + 1]].tolist()
                if len(answer) < k:
                    skip = set(top.items[bounds[r] : bounds[r + 1]].tolist())
                    if exclude_purchased:
                        skip.update(history)
                    answer += self.fill.fill(
                        region, k - len(answer), skip, orders[region], HIT_FLOOR
                    )
                if promoting:
                    promoted = eligible_promoted(self.catalog, rules, allowed, history)
                    answer = insert_promoted(answer, promoted, k, rules.promoted_share)
            answers.append(answer)
        return answers

    def _hit_reasons(self, rows: sparse.csr_matrix, owner: IntArray, items: IntArray) -> list[str]:
        """The reason of each `items[n]` recommended to history row `owner[n]`: the history
        items most similar to it ("bought X, Y"), PERSONAL_REASON when none co-occurs."""
        return hit_reasons(
            rows,
            owner,
            items,
            self.similarity,
            self._reason_names,
            most=REASON_ITEMS,
            default=PERSONAL_REASON,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: batch inference builds millions of small
    acyclic objects (the Scored lists), and the collector, triggered by their count, would
    walk the ones built before again and again (a quarter of the batch time, measured)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
