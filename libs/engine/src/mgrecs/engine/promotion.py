"""Which products a promotion puts forward: the active ones passing its filter (and the
request's), most popular first, never one the customer bought or the product asked about.
`rules.insert_promoted` then gives them their share of the slots."""

from collections.abc import Iterable

import numpy as np

from mgrecs.engine.arrays import BoolArray, IntArray
from mgrecs.engine.model import RecommenderModel


def popularity_order(model: RecommenderModel, region: str | None) -> IntArray:
    """Catalogue indices of the active products, most popular in `region` first (then
    globally), then the products nobody bought yet, in catalogue order."""
    catalog = model.catalog
    bought = len(model.item_ids)
    popular = [catalog.index[s.item_id] for s in model.popular(region, bought)]
    unbought = np.flatnonzero(catalog.active[bought:]) + bought
    return np.concatenate([np.asarray(popular, dtype=np.int64), unbought.astype(np.int64)])


def promoted_products(
    model: RecommenderModel,
    order: IntArray,
    allowed: BoolArray,
    excluded: Iterable[str],
    k: int,
) -> list[str]:
    """The first `k` products of `order` (a `popularity_order`) that are `allowed` (a mask
    over the catalogue) and not `excluded` (product ids)."""
    catalog = model.catalog
    wanted = allowed & catalog.active
    gone = [catalog.index[p] for p in excluded if p in catalog.index]
    wanted[gone] = False
    return [catalog.product_ids[j] for j in order[wanted[order]][: max(k, 0)].tolist()]
