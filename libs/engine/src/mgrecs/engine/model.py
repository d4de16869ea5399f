"""The recommender model: a fitted user-personalization recipe, popularity and co-occurrence,
trained together, saved as one file, and asked through one object.

Each kind of list has its own module: per customer (`user_lists`: `recommend`,
`recommend_all`, `rank`), per product (`similar`: `similar_items`, `similar_all`) and the
popularity fill that tops both up and answers new customers (`fill`: `popular`). Every list
takes the request's `Rules` (`rules`: inactive products never, category and price filters,
any further condition, promoted products) and shares one score scale (`bands`).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import IntArray
from mgrecs.engine.bands import score_scale
from mgrecs.engine.catalog import Catalog, build_catalog
from mgrecs.engine.cooccurrence import item_similarity
from mgrecs.engine.dataset import NO_REGION, Dataset, Lines, binarize, build_dataset
from mgrecs.engine.fill import PopularityFill
from mgrecs.engine.ids import Ids
from mgrecs.engine.model_file import read_model, write_model
from mgrecs.engine.order_history import OrderHistory
from mgrecs.engine.popularity import Popularity, fit_popularity
from mgrecs.engine.recipes import Recipe, TrainingData, make_recipe
from mgrecs.engine.recipes.support import uses_history
from mgrecs.engine.records import Interaction, ProductInfo, Scored
from mgrecs.engine.rules import NO_RULES, Rules
from mgrecs.engine.similar import SimilarItems
from mgrecs.engine.user_lists import UserLists

DEFAULT_RECIPE = "rp3beta"
"""User-personalization recipe of `fit` when none is given (with its default parameters)."""


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
        self._matrix = matrix
        self._binary = binarize(matrix)
        self._customer_region = customer_region
        self._popularity = popularity
        self._similarity = similarity
        self._recipe = recipe
        self._score_scale = score_scale
        self._catalog = catalog
        self._order_history = order_history
        self._ids = Ids(customer_ids, item_ids, regions)
        self._fill = PopularityFill(popularity, self._ids)
        self._similar = SimilarItems(similarity, catalog, self._ids, self._fill)
        self._lists = UserLists(
            ids=self._ids,
            binary=self._binary,
            customer_region=customer_region,
            recipe=recipe,
            score_scale=score_scale,
            catalog=catalog,
            order_history=order_history,
            similarity=similarity,
            fill=self._fill,
        )

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
            score_scale=score_scale(recipe, binary, history),
            catalog=build_catalog(dataset.item_ids, products),
            order_history=history,
        )

    def save(self, path: Path) -> None:
        """Write one .npz (see `model_file`); a reader never sees a half-written file."""
        write_model(
            path,
            {
                "customer_ids": self._ids.customer_ids,
                "item_ids": self._ids.item_ids,
                "regions": self._ids.regions,
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
        return list(self._ids.item_ids)

    @property
    def customer_ids(self) -> list[str]:
        return list(self._ids.customer_ids)

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
        row = self._ids.customer_index.get(customer_id)
        if row is None:
            return []
        lo, hi = self._binary.indptr[row], self._binary.indptr[row + 1]
        return [self._ids.item_ids[j] for j in self._binary.indices[lo:hi].tolist()]

    def region_of(self, customer_id: str) -> str | None:
        """Region of the customer's most recent order that had one."""
        row = self._ids.customer_index.get(customer_id)
        if row is None or self._customer_region[row] == NO_REGION:
            return None
        return self._ids.regions[int(self._customer_region[row])]

    # -- recommendations ----------------------------------------------------------------
    # Every list method takes the request's `rules` (see `rules.Rules`; default: none).
    # Inactive products are never recommended.

    def recommend(
        self,
        history: list[str],
        region: str | None,
        k: int,
        exclude_purchased: bool = True,
        *,
        rules: Rules = NO_RULES,
        customer_id: str | None = None,
        now: float | None = None,
    ) -> list[Scored]:
        """Top-k for a customer with this purchase history; popularity in `region` fills up.
        `customer_id` names a training customer, whose stored order counts and dates a
        recipe that `uses_history` scores with (`now`: the request time, epoch seconds;
        None: the training data's end)."""
        region_number = self._ids.region_number(region)
        return self._lists.recommend(
            history, region_number, k, exclude_purchased, rules, customer_id, now
        )

    def recommend_all(
        self,
        k: int,
        customer_ids: list[str] | None = None,
        *,
        exclude_purchased: bool = True,
        rules: Rules = NO_RULES,
    ) -> dict[str, list[Scored]]:
        """Vectorised top-k for many known customers at once (batch inference).

        Gives exactly what `recommend(history(c), region_of(c), k, customer_id=c)` gives with
        the same rules; unknown customer ids are left out of the result.
        """
        index = self._ids.customer_index
        if customer_ids is None:
            rows = np.arange(len(self._ids.customer_ids), dtype=np.int64)
        else:
            known = dict.fromkeys(c for c in customer_ids if c in index)
            rows = np.array([index[c] for c in known], dtype=np.int64)
        return self._lists.recommend_all(k, rows, exclude_purchased, rules)

    def similar_items(self, item_id: str, k: int, *, rules: Rules = NO_RULES) -> list[Scored]:
        """Items most often bought by the same customers, then content neighbours, then
        popularity (see `similar`); an unknown id gets nothing."""
        return self._similar.similar_items(item_id, k, rules)

    def similar_all(self, item_ids: Sequence[str], k: int) -> dict[str, list[Scored]]:
        """`similar_items(i, k)` (no rules) of each of `item_ids` (batch inference)."""
        return self._similar.similar_all(item_ids, k)

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
        region_number = self._ids.region_number(region)
        return self._lists.rank(history, region_number, item_ids, customer_id, now)

    def popular(self, region: str | None, k: int) -> list[Scored]:
        """Most popular active items in `region` (then globally) with trending ones mixed
        in, as in every fill: the cold-start list; scores 0..1 with 1 the top item."""
        return self._fill.popular(self._ids.region_number(region), k, self._catalog.active)
