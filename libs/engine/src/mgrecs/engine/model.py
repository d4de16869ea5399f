"""The recommender model: a user-personalization recipe, popularity, and co-occurrence.

- Per customer (`recommend`, `recommend_all`, `rank`): the recipe scores the customer's
  purchase row, built from the history the caller passes, so purchases made since training
  fold in at once, without a retrain. Rows are binary (bought or not), in training and in
  scoring alike, because a history arrives as a list of product ids. A chunk of customers
  is ranked at once (`topk`, `reasons`: no loop per customer until the lists are built),
  from the recipe's stored candidates when it scores sparsely (`SparseScoring`). A repeat
  recipe (`uses_history`: buy-again, a blend with it) also needs how many orders held each
  product and when: the model keeps the training customers' (`OrderHistory`) and scores a
  known customer with them, as evaluation did when it chose the recipe.
- Per product (`similar_items`) and for the reasons ("bought X"): item-to-item
  co-occurrence, cosine-damped.
- Popularity, per region then global, fills every list up and answers new customers;
  every TRENDING_EVERY-th fill slot goes to a product trending in the region (then
  globally), rising in the last days (see `trending`), so new customers also see what
  picks up now. Fill reasons: "popular in <region>" / "popular", "trending in <region>" /
  "trending".
- Product metadata (`catalog`): similar items of a product with fewer than
  CONTENT_MIN_NEIGHBOURS co-purchase neighbours (or none, never bought) back off to products
  of the same category (`content`); the rules (`rules`: inactive products never,
  category and price filters, promoted products) apply to every list the same way.

Score scale, shared by every method: personalised hits live in (0.1, 1) and popularity fill
in [0, 0.1], so a filled slot never outranks a real personal signal. In similar items,
content neighbours take (0.05, 0.1] and the popularity fill [0, 0.05]. In a fill, a popular
product scores its popularity (`Popularity.scores`) times the band's ceiling, and a trending
product the score of the fill item before it, so lists stay sorted; `popular` is that fill
with the ceiling 1. A promoted product takes the score of the item it displaces (see
`rules`). A hit with raw recipe score x > 0 scores 0.1 + 0.9 x / (x + scale), where `scale`
is the median, over training customers, of their best raw score. One scale for everyone
(rather than each row divided by its own maximum) keeps scores comparable across customers:
a customer with a strong signal gets higher scores than one with a weak signal, a typical
customer's best item scores about 0.55, and the mapping is strictly increasing, so the order
is the recipe's own.
"""

import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray, ObjectArray
from mgrecs.engine.catalog import Catalog, build_catalog
from mgrecs.engine.content import content_neighbours
from mgrecs.engine.cooccurrence import item_similarity
from mgrecs.engine.dataset import NO_REGION, Dataset, Lines, binarize, build_dataset
from mgrecs.engine.model_file import read_model, write_model
from mgrecs.engine.order_history import OrderHistory
from mgrecs.engine.popularity import Popularity, fit_popularity
from mgrecs.engine.reasons import ReasonNames, hit_reasons
from mgrecs.engine.recipes import Recipe, SparseScoring, TrainingData, make_recipe
from mgrecs.engine.recipes.base import ScoringContext
from mgrecs.engine.recipes.support import score_rows, sparse_scores, uses_history
from mgrecs.engine.records import Interaction, ProductInfo, Scored
from mgrecs.engine.rules import ProductCondition, Rules, allowed_products, insert_promoted
from mgrecs.engine.topk import TopK, dense_top_k, sparse_top_k

__all__ = [
    "DEFAULT_RECIPE",
    "CooccurrenceModel",
    "Interaction",
    "ProductInfo",
    "RecommenderModel",
    "Scored",
]

DEFAULT_RECIPE = "rp3beta"
"""User-personalization recipe of `fit` when none is given (with its default parameters)."""
HIT_FLOOR = 0.1
"""Boundary between the popularity band [0, HIT_FLOOR] and the personalised band above."""
CONTENT_FLOOR = 0.05
"""In similar items: content neighbours in (CONTENT_FLOOR, HIT_FLOOR], popularity below."""
CONTENT_MIN_NEIGHBOURS = 3
"""Similar items of a product with fewer co-purchase neighbours add content neighbours."""
PERSONAL_REASON = "recommended for you"
"""Reason of a hit that no history item co-occurs with (a latent-factor or longer-path hit)."""
REASON_ITEMS = 3
"""How many of the history items that led to a recommendation its reason names."""
CHUNK_CELLS = 8_000_000
"""Dense users x items score cells per chunk in `recommend_all` (64 MB of float64)."""
SPARSE_ROW_CELLS = 2_000
"""Score cells a customer counts for in a chunk when the recipe scores sparsely: its
candidates (basket size x neighbours per item), with room to spare."""
SCALE_SAMPLE = 2_000
"""Training customers (evenly spaced) whose best raw scores set the score scale."""
TRENDING_EVERY = 3
"""Fill slots 3, 6, 9, ... (counted from the fill's start) go to the next trending product
of the region, then of all regions, while one is left; the others to the next most popular
product. At least 2: a trending slot takes the score of the popular slot before it."""


class FillOrder(NamedTuple):
    """The products a popularity fill may use, as seen from one region, in the order it
    uses them (only those the rules allow)."""

    popular: IntArray
    """Most popular first (`Popularity.order`)."""
    trending: IntArray
    """Trending in the region first, then globally (`Popularity.trending_order`)."""


class RecommenderModel:
    """A fitted user-personalization recipe, popularity (global and per region),
    item-to-item co-occurrence and the product catalogue, with their id maps; saved and
    loaded as one .npz."""

    def __init__(
        self,
        *,
        customer_ids: list[str],
        item_ids: list[str],
        regions: list[str],
        matrix: sparse.csr_matrix,
        customer_region: IntArray,
        popularity: Popularity,
        similarity: sparse.csr_matrix,
        recipe: Recipe,
        score_scale: float,
        catalog: Catalog,
        order_history: OrderHistory | None = None,
    ) -> None:
        self._customer_ids = customer_ids
        self._item_ids = item_ids
        self._regions = regions
        self._matrix = matrix
        self._binary = binarize(matrix)
        self._customer_region = customer_region
        self._popularity = popularity
        self._similarity = similarity
        self._recipe = recipe
        self._score_scale = score_scale
        self._catalog = catalog
        self._order_history = order_history
        self._customer_index = {c: n for n, c in enumerate(customer_ids)}
        self._item_index = {i: n for n, i in enumerate(item_ids)}
        self._region_index = {r: n for n, r in enumerate(regions)}

    # -- training and persistence -------------------------------------------------------

    @classmethod
    def fit(
        cls,
        interactions: Sequence[Interaction] | Lines,
        *,
        recipe: Recipe | None = None,
        neighbours: int = 100,
        half_life_days: float = 30.0,
        products: Sequence[ProductInfo] | None = None,
    ) -> "RecommenderModel":
        """Train on order lines: `recipe` (unfitted; None: DEFAULT_RECIPE) is fitted on the
        binary purchase matrix; `neighbours` co-occurring items kept per item; popularity
        half-life in days; `products`: catalogue metadata (products nobody bought included),
        for the content back-off and the rules. The customers' order history is kept when
        the recipe `uses_history`."""
        return cls.fit_dataset(
            build_dataset(interactions),
            recipe=recipe,
            neighbours=neighbours,
            half_life_days=half_life_days,
            products=products,
        )

    @classmethod
    def fit_dataset(
        cls,
        dataset: Dataset,
        *,
        recipe: Recipe | None = None,
        neighbours: int = 100,
        half_life_days: float = 30.0,
        products: Sequence[ProductInfo] | None = None,
    ) -> "RecommenderModel":
        """`fit` on order lines already indexed (a benchmark generates millions of them
        straight into numpy, where Interaction objects would take longer than training)."""
        binary = binarize(dataset.matrix)
        recipe = recipe if recipe is not None else make_recipe(DEFAULT_RECIPE)
        data = TrainingData(
            matrix=sparse.csr_matrix(binary, dtype=np.float32),
            line_customer=dataset.line_customer,
            line_item=dataset.line_item,
            line_time=dataset.line_time,
            customer_region=dataset.customer_region,
            now=float(dataset.line_time.max()) if dataset.line_time.size else 0.0,
        )
        recipe.fit(data)
        history = OrderHistory.of(data) if uses_history(recipe) else None
        return cls(
            customer_ids=dataset.customer_ids,
            item_ids=dataset.item_ids,
            regions=dataset.regions,
            matrix=dataset.matrix,
            customer_region=dataset.customer_region,
            popularity=fit_popularity(dataset, half_life_days),
            similarity=item_similarity(binary, neighbours),
            recipe=recipe,
            score_scale=_score_scale(recipe, binary, history),
            catalog=build_catalog(dataset.item_ids, products),
            order_history=history,
        )

    def save(self, path: Path) -> None:
        """Write one .npz (see `model_file`); a reader never sees a half-written file."""
        write_model(
            path,
            {
                "customer_ids": self._customer_ids,
                "item_ids": self._item_ids,
                "regions": self._regions,
                "matrix": self._matrix,
                "customer_region": self._customer_region,
                "popularity": self._popularity,
                "similarity": self._similarity,
                "recipe": self._recipe,
                "score_scale": self._score_scale,
                "catalog": self._catalog,
                "order_history": self._order_history,
            },
        )

    @classmethod
    def load(cls, path: Path) -> "RecommenderModel":
        """Read a file `save` wrote; any other format version is a clear error."""
        return cls(**read_model(path))

    # -- lookups ------------------------------------------------------------------------

    @property
    def item_ids(self) -> list[str]:
        return list(self._item_ids)

    @property
    def customer_ids(self) -> list[str]:
        return list(self._customer_ids)

    @property
    def recipe(self) -> Recipe:
        """The fitted user-personalization recipe (its `name` and `params()` describe it)."""
        return self._recipe

    @property
    def catalog(self) -> Catalog:
        """Product metadata, indexed like `item_ids` first (what filters are evaluated on)."""
        return self._catalog

    @property
    def n_interactions(self) -> int:
        """Distinct (customer, product) pairs the model was trained on."""
        return int(self._matrix.nnz)

    def history(self, customer_id: str) -> list[str]:
        """Products the customer bought in the training data (empty when unknown)."""
        row = self._customer_index.get(customer_id)
        if row is None:
            return []
        return [self._item_ids[j] for j in self._history_of_row(row)]

    def region_of(self, customer_id: str) -> str | None:
        """Region of the customer's most recent order that had one."""
        row = self._customer_index.get(customer_id)
        if row is None or self._customer_region[row] == NO_REGION:
            return None
        return self._regions[int(self._customer_region[row])]

    # -- recommendations ----------------------------------------------------------------
    # Every list method takes the same rule keywords: `categories` (only these), `min_price`
    # and `max_price` (inclusive), `promoted` ids with their `promoted_share` of the slots,
    # `where` (any further condition, e.g. a filter expression's). Inactive products are
    # never recommended.

    def recommend(
        self,
        history: list[str],
        region: str | None,
        k: int,
        exclude_purchased: bool = True,
        *,
        categories: set[str] | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        promoted: Sequence[str] = (),
        promoted_share: float = 0.0,
        where: ProductCondition | None = None,
        customer_id: str | None = None,
        now: float | None = None,
    ) -> list[Scored]:
        """Top-k for a customer with this purchase history; popularity in `region` fills up.
        `customer_id` names a training customer, whose stored order counts and dates a
        recipe that `uses_history` scores with (see `_request_context`; `now`: the request
        time, epoch seconds; None: the training data's end)."""
        if k <= 0 or not self._item_ids:
            return []
        rules = Rules(categories, min_price, max_price, promoted, promoted_share, where)
        items = self._known_items(history)
        rows = self._rows_for(items)
        allowed = allowed_products(self._catalog, rules)
        region_number = self._region_number(region)
        context = self._request_context(history, items, region_number, customer_id, now)
        return self._recommend_rows(rows, context, exclude_purchased, k, rules, allowed, {})[0]

    def recommend_all(
        self,
        k: int,
        customer_ids: list[str] | None = None,
        *,
        exclude_purchased: bool = True,
        categories: set[str] | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        promoted: Sequence[str] = (),
        promoted_share: float = 0.0,
        where: ProductCondition | None = None,
    ) -> dict[str, list[Scored]]:
        """Vectorised top-k for many known customers at once (batch inference).

        Gives exactly what `recommend(history(c), region_of(c), k, customer_id=c)` gives with
        the same rules; unknown customer ids are left out of the result.
        """
        if customer_ids is None:
            rows = np.arange(len(self._customer_ids), dtype=np.int64)
        else:
            known = dict.fromkeys(c for c in customer_ids if c in self._customer_index)
            rows = np.array([self._customer_index[c] for c in known], dtype=np.int64)
        if k <= 0 or not self._item_ids:
            return {self._customer_ids[r]: [] for r in rows}
        rules = Rules(categories, min_price, max_price, promoted, promoted_share, where)
        allowed = allowed_products(self._catalog, rules)
        orders: dict[int, FillOrder] = {}  # filtered fill orders, shared by the chunks
        result: dict[str, list[Scored]] = {}
        n_items = len(self._item_ids)
        sparse_rows = isinstance(self._recipe, SparseScoring)
        row_cells = min(n_items, SPARSE_ROW_CELLS) if sparse_rows else n_items
        chunk = max(1, CHUNK_CELLS // row_cells)
        with _collector_paused():
            for start in range(0, rows.shape[0], chunk):
                block = rows[start : start + chunk]
                context = self._stored_context(block)
                answers = self._recommend_rows(
                    self._binary[block], context, exclude_purchased, k, rules, allowed, orders
                )
                for row, answer in zip(block.tolist(), answers, strict=True):
                    result[self._customer_ids[row]] = answer
        return result

    def similar_items(
        self,
        item_id: str,
        k: int,
        *,
        categories: set[str] | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        promoted: Sequence[str] = (),
        promoted_share: float = 0.0,
        where: ProductCondition | None = None,
    ) -> list[Scored]:
        """Items most often bought by the same customers; with fewer than
        CONTENT_MIN_NEIGHBOURS of those, products of the same category (nearest price band,
        then most similar name) follow; global popularity fills up. A catalogue product
        nobody bought gets content neighbours; an unknown id gets nothing."""
        if item_id not in self._catalog.index or k <= 0:
            return []
        rules = Rules(categories, min_price, max_price, promoted, promoted_share, where)
        allowed = allowed_products(self._catalog, rules)
        return self._similar(item_id, k, rules, allowed, self._allowed_order(NO_REGION, allowed))

    def similar_all(self, item_ids: Sequence[str], k: int) -> dict[str, list[Scored]]:
        """`similar_items(i, k)` (no rules) of each of `item_ids` (batch inference): the
        catalogue mask and the fill order are worked out once, not once per product."""
        rules = Rules()
        allowed = allowed_products(self._catalog, rules)
        fill_order = self._allowed_order(NO_REGION, allowed)
        return {
            item_id: self._similar(item_id, k, rules, allowed, fill_order)
            if item_id in self._catalog.index and k > 0
            else []
            for item_id in item_ids
        }

    def _similar(
        self, item_id: str, k: int, rules: Rules, allowed: BoolArray, fill_order: FillOrder
    ) -> list[Scored]:
        """`similar_items` of a catalogue product with the rules' mask and fill order."""
        item = self._catalog.index[item_id]
        scored: list[Scored] = []
        chosen = np.zeros(0, dtype=np.int64)
        if item < len(self._item_ids):
            lo, hi = self._similarity.indptr[item], self._similarity.indptr[item + 1]
            columns = self._similarity.indices[lo:hi]
            values = self._similarity.data[lo:hi]
            kept = allowed[columns]
            columns, values = columns[kept], values[kept]
            order = np.lexsort((columns, -values))[:k]
            chosen = columns[order].astype(np.int64)
            scored = [
                Scored(self._item_ids[j], _similarity_band(v), f"bought together with {item_id}")
                for j, v in zip(chosen.tolist(), values[order].tolist(), strict=True)
            ]
        if len(scored) < CONTENT_MIN_NEIGHBOURS:
            candidates = allowed.copy()
            candidates[chosen] = False
            content, closeness = content_neighbours(
                self._catalog, item, candidates, k - len(scored)
            )
            scored += [
                Scored(
                    self._catalog.product_ids[j],
                    CONTENT_FLOOR + (HIT_FLOOR - CONTENT_FLOOR) * c,
                    f"same category as {item_id}",
                )
                for j, c in zip(content.tolist(), closeness.tolist(), strict=True)
            ]
            chosen = np.concatenate([chosen, content])
        skip = {item, *chosen.tolist()}
        scored += self._fill(NO_REGION, k - len(scored), skip, fill_order, CONTENT_FLOOR)
        return insert_promoted(
            scored, self._eligible_promoted(rules, allowed, [item]), k, rules.promoted_share
        )

    def rank(
        self,
        history: list[str],
        region: str | None,
        item_ids: list[str],
        *,
        customer_id: str | None = None,
        now: float | None = None,
    ) -> list[Scored]:
        """Re-rank `item_ids` for a customer (`customer_id`, `now`: as in `recommend`);
        unknown items go last, inactive ones after them (never recommended, but none is
        dropped)."""
        items = self._known_items(history)
        row = self._rows_for(items)
        region_number = self._region_number(region)
        context = self._request_context(history, items, region_number, customer_id, now)
        hits = self._personal_scores(row, context)[0] if self._item_ids else np.zeros(0)
        bands = self._bands(hits)
        active = self._catalog.active
        wanted = [self._item_index.get(item_id) for item_id in item_ids]
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
            catalogued = self._catalog.index.get(item_id)
            if catalogued is not None and not active[catalogued]:
                inactive.append(Scored(item_id, 0.0, "inactive product"))
            elif j is None:
                unknown.append(Scored(item_id, 0.0, "unknown item"))
            elif hits[j] > 0:
                known.append(Scored(item_id, float(bands[j]), reasons.get(j, PERSONAL_REASON)))
            else:
                known.append(self._popular_item(region_number, j, HIT_FLOOR))
        known.sort(key=lambda s: -s.score)  # stable: ties keep the caller's order
        return known + unknown + inactive

    def popular(self, region: str | None, k: int) -> list[Scored]:
        """Most popular active items in `region` (then globally) with trending ones mixed
        in, as in every fill: the cold-start list; scores 0..1 with 1 the top item."""
        region_number = self._region_number(region)
        order = self._allowed_order(region_number, self._catalog.active)
        return self._fill(region_number, k, set(), order, 1.0)

    # -- internals ----------------------------------------------------------------------

    def _region_number(self, region: str | None) -> int:
        return NO_REGION if region is None else self._region_index.get(region, NO_REGION)

    def _known_items(self, history: list[str]) -> IntArray:
        """Sorted distinct indices of the history items the model knows."""
        known = {self._item_index[i] for i in history if i in self._item_index}
        return np.array(sorted(known), dtype=np.int64)

    def _history_of_row(self, row: int) -> IntArray:
        lo, hi = self._binary.indptr[row], self._binary.indptr[row + 1]
        items: IntArray = self._binary.indices[lo:hi].astype(np.int64)
        return items

    def _rows_for(self, items: IntArray) -> sparse.csr_matrix:
        """A one-customer binary row, built exactly like a row of the training matrix."""
        return sparse.csr_matrix(
            (np.ones(items.shape[0]), items, np.array([0, items.shape[0]])),
            shape=(1, len(self._item_ids)),
        )

    def _stored_context(self, customers: IntArray) -> ScoringContext:
        """The scoring context of training customers' rows: their regions, and their order
        counts and dates when the model keeps them (`OrderHistory`)."""
        regions = self._customer_region[customers]
        if self._order_history is None:
            return ScoringContext(regions=regions)
        return self._order_history.context(customers, regions)

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
        row = None if customer_id is None else self._customer_index.get(customer_id)
        if self._order_history is None or row is None:
            return ScoringContext(regions=regions)
        named = Counter(history)
        mentions = np.array([named[self._item_ids[j]] for j in items.tolist()], dtype=np.int64)
        return self._order_history.customer_context(row, items, mentions, region, now)

    def _personal_scores(self, rows: sparse.csr_matrix, context: ScoringContext) -> Float64Array:
        """The recipe's raw scores of every item for each binary history row, knowing
        `context` (regions for a region-aware recipe, orders and dates for a repeat one)."""
        return _raw_scores(self._recipe, rows, context)

    @cached_property
    def _item_names(self) -> ObjectArray:
        """The item ids as an object array, to pick many of them at once."""
        return np.array(self._item_ids, dtype=object)

    @cached_property
    def _reason_names(self) -> ReasonNames:
        return ReasonNames.of(self._item_ids)

    def _bands(self, raw: Float64Array) -> Float64Array:
        """Positive raw recipe scores in the personalised band (HIT_FLOOR, 1)."""
        bands: Float64Array = HIT_FLOOR + (1.0 - HIT_FLOOR) * raw / (raw + self._score_scale)
        return bands

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
        allowed_items = allowed[: len(self._item_ids)]
        if isinstance(self._recipe, SparseScoring):
            scores = sparse_scores(self._recipe, rows, context)
            return sparse_top_k(scores, k, allowed_items, excluded)
        return dense_top_k(self._personal_scores(rows, context), k, allowed_items, excluded)

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
        as a catalogue mask; `orders`: a cache of `_allowed_order`. The hits of all rows
        are built at once; only rows short of k hits (popularity fill) or with promoted
        products get more per-row work."""
        assert context.regions is not None  # every context the model builds has them
        regions: list[int] = context.regions.tolist()
        top = self._top_hits(rows, context, exclude_purchased, k, allowed)
        hits = list(
            map(
                Scored,
                self._item_names[top.items].tolist(),
                self._bands(top.scores).tolist(),
                self._hit_reasons(rows, top.owners(), top.items),
            )
        )
        for region in set(regions) - orders.keys():
            orders[region] = self._allowed_order(region, allowed)
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
                    answer += self._fill(region, k - len(answer), skip, orders[region], HIT_FLOOR)
                if promoting:
                    promoted = self._eligible_promoted(rules, allowed, history)
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
            self._similarity,
            self._reason_names,
            most=REASON_ITEMS,
            default=PERSONAL_REASON,
        )

    def _allowed_order(self, region: int, allowed: BoolArray) -> FillOrder:
        """The fill order as seen from `region`, only the `allowed` items."""
        mask = allowed[: len(self._item_ids)]
        popular = self._popularity.order(region)
        trending = self._popularity.trending_order(region)
        return FillOrder(popular[mask[popular]], trending[mask[trending]])

    def _eligible_promoted(
        self, rules: Rules, allowed: BoolArray, excluded: Sequence[int]
    ) -> list[str]:
        """Promoted ids the catalogue knows and the rules allow, without `excluded`
        catalogue indices (the customer's purchases, the product itself), each once."""
        if rules.promoted_share <= 0:
            return []
        index = self._catalog.index
        out = set(excluded)
        return list(
            dict.fromkeys(
                p
                for p in rules.promoted
                if p in index and allowed[index[p]] and index[p] not in out
            )
        )

    def _fill(
        self, region: int, count: int, skip: set[int], order: FillOrder, ceiling: float
    ) -> list[Scored]:
        """Up to `count` items of `order` not in `skip`, scored in [0, ceiling], best first:
        every TRENDING_EVERY-th slot the next trending one (while any is left), the others
        the next most popular one."""
        result: list[Scored] = []
        if count <= 0:
            return result
        # An order is only passed over where an item is skipped or already chosen, so its
        # first count + len(skip) items are all a fill can reach.
        reach = count + len(skip)
        popular, trending = order.popular[:reach].tolist(), order.trending[:reach].tolist()
        taken = set(skip)
        p = t = 0
        while len(result) < count:
            if (len(result) + 1) % TRENDING_EVERY == 0:
                while t < len(trending) and trending[t] in taken:
                    t += 1
                if t < len(trending):
                    j = trending[t]
                    taken.add(j)
                    result.append(
                        Scored(self._item_ids[j], result[-1].score, self._trend_reason(region, j))
                    )
                    continue
            while p < len(popular) and popular[p] in taken:
                p += 1
            if p == len(popular):
                break
            j = popular[p]
            taken.add(j)
            result.append(self._popular_item(region, j, ceiling))
        return result

    def _popular_item(self, region: int, item: int, ceiling: float) -> Scored:
        score = ceiling * float(self._popularity.scores(region)[item])
        return Scored(self._item_ids[item], score, self._popular_reason(region, item))

    def _popular_reason(self, region: int, item: int) -> str:
        if self._popularity.in_region(region)[item]:
            return f"popular in {self._regions[region]}"
        return "popular"

    def _trend_reason(self, region: int, item: int) -> str:
        if self._popularity.is_trending_in(region, item):
            return f"trending in {self._regions[region]}"
        return "trending"


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


def _similarity_band(similarity: float) -> float:
    """Map a co-occurrence similarity in (0, 1] into the band above popularity."""
    return HIT_FLOOR + (1.0 - HIT_FLOOR) * float(similarity)


def _raw_scores(
    recipe: Recipe, rows: sparse.csr_matrix, context: ScoringContext | None = None
) -> Float64Array:
    scores: Float64Array = np.asarray(score_rows(recipe, rows, context), dtype=np.float64)
    return scores


def _score_scale(
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
            _raw_scores(
                recipe,
                binary[sample[start : start + chunk]],
                None if history is None else history.context(sample[start : start + chunk]),
            ).max(axis=1)
            for start in range(0, sample.shape[0], chunk)
        ]
    )
    positive = best[best > 0]
    return float(np.median(positive)) if positive.size else 1.0


CooccurrenceModel = RecommenderModel
"""The name the batch and engine services (and older code) import."""
