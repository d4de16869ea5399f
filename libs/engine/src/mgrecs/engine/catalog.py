"""Product metadata (name, category, price, active) indexed like the model's items.

The catalogue's first indices are the model's items (the user-item matrix columns), in the
same order, so a mask over the catalogue cut to `n_items` is a mask over the items;
products nobody bought yet follow, sorted by id. Those are known only to the content
back-off of similar items and to the rules, never to the recipe.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.records import ProductInfo

NO_CATEGORY = -1
"""Category index of a product whose category is unknown."""
TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Catalog:
    """Parallel per-product arrays; unknown metadata is "" / NO_CATEGORY / NaN / active."""

    product_ids: list[str]
    names: list[str]
    categories: list[str]
    """Distinct category names; `category` indexes them."""
    category: IntArray
    price: Float64Array
    active: BoolArray

    @cached_property
    def index(self) -> dict[str, int]:
        return {p: n for n, p in enumerate(self.product_ids)}

    @cached_property
    def category_index(self) -> dict[str, int]:
        return {c: n for n, c in enumerate(self.categories)}

    @cached_property
    def members(self) -> list[IntArray]:
        """Per category, its products' indices, ascending."""
        order = np.argsort(self.category, kind="stable")
        bounds = np.searchsorted(self.category[order], np.arange(len(self.categories) + 1))
        return [order[bounds[c] : bounds[c + 1]] for c in range(len(self.categories))]

    @cached_property
    def tokens(self) -> sparse.csr_matrix:
        """products x name tokens, binary: lower-cased word tokens of each name."""
        vocabulary: dict[str, int] = {}
        indptr, indices = [0], []
        for name in self.names:
            words = sorted({vocabulary.setdefault(t, len(vocabulary)) for t in _tokens(name)})
            indices.extend(words)
            indptr.append(len(indices))
        return sparse.csr_matrix(
            (np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(self.names), len(vocabulary)),
        )


def _tokens(name: str) -> list[str]:
    return TOKEN.findall(name.lower())


def build_catalog(item_ids: Sequence[str], products: Sequence[ProductInfo] | None) -> Catalog:
    """The model's items first (metadata where `products` has it), then the other products
    of `products`; a later duplicate product id wins."""
    info = {p.product_id: p for p in products or ()}
    known = set(item_ids)
    product_ids = list(item_ids) + sorted(p for p in info if p not in known)
    rows = [info.get(p, ProductInfo(p)) for p in product_ids]
    categories = sorted({r.category for r in rows if r.category})
    category_index = {c: n for n, c in enumerate(categories)}
    return Catalog(
        product_ids=product_ids,
        names=[r.name or "" for r in rows],
        categories=categories,
        category=np.array(
            [category_index[r.category] if r.category else NO_CATEGORY for r in rows],
            dtype=np.int64,
        ),
        price=np.array([np.nan if r.price is None else float(r.price) for r in rows]),
        active=np.array([r.active for r in rows], dtype=bool),
    )
