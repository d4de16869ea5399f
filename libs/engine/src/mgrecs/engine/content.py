"""Content-based neighbours: the back-off of similar items for products with few or no
co-purchases.

In the model (`content_neighbours`): candidates share the product's category; the nearest
price band comes first (bands double: [1, 2), [2, 4), ... so "nearest" is relative, as
shoppers compare prices), then the larger overlap of lower-cased name tokens (Jaccard), then
the catalogue index. Simple and deterministic: no learned embedding to retrain or explain.

From the catalogue (`catalogue_like`): the similar items of a product no model knows (never
sold, or launched since the last retrain), which the API reads from the database: its first
co-purchases, then the products of its category sharing most of its attributes (brand,
size...), then the most sold of them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.bands import content_band
from mgrecs.engine.catalog import NO_CATEGORY, Catalog
from mgrecs.engine.records import Scored

UNKNOWN_BAND_DISTANCE = 64
"""Band distance when either price is unknown (or not positive): after every known one."""


def price_bands(price: Float64Array) -> Float64Array:
    """floor(log2(price)); NaN where the price is unknown or not positive."""
    bands = np.full(price.shape[0], np.nan)
    known = price > 0  # False for NaN
    bands[known] = np.floor(np.log2(price[known]))
    return bands


def content_neighbours(
    catalog: Catalog, item: int, allowed: BoolArray, count: int
) -> tuple[IntArray, Float64Array]:
    """Up to `count` products like catalogue product `item` among `allowed` (never `item`
    itself), best first, with a closeness in (0, 1] that never increases down the list:
    2^-band distance x (1 + Jaccard) / 2."""
    category = int(catalog.category[item])
    if category == NO_CATEGORY or count <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    candidates = catalog.members[category]
    candidates = candidates[allowed[candidates] & (candidates != item)]
    bands = price_bands(catalog.price[np.append(candidates, item)])
    distance = np.abs(bands[:-1] - bands[-1])
    distance = np.where(np.isnan(distance), UNKNOWN_BAND_DISTANCE, distance)
    tokens = catalog.tokens
    overlap = np.asarray((tokens[candidates] @ tokens[item].T).todense()).ravel()
    sizes = np.diff(tokens.indptr)
    union = sizes[candidates] + sizes[item] - overlap
    jaccard = np.divide(overlap, union, out=np.zeros(overlap.shape[0]), where=union > 0)
    order = np.lexsort((candidates, -jaccard, distance))[:count]
    closeness: Float64Array = np.power(0.5, distance[order]) * (1.0 + jaccard[order]) / 2.0
    chosen: IntArray = candidates[order].astype(np.int64)
    return chosen, closeness


@dataclass(frozen=True)
class CatalogueCandidate:
    """A catalogue product that may be like the asked one, and what links them."""

    product_id: str
    category: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Free attributes (brand, size...), as the catalogue gives them."""
    sold: int = 0
    """Order lines naming it: its popularity in its category."""
    bought_with: int = 0
    """Orders holding both it and the asked product."""


def shared_attributes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The attributes two products share (same name, same value), by name."""
    return sorted(key for key, value in a.items() if key in b and b[key] == value)


def like_reason(product_id: str, candidate: CatalogueCandidate, shared: list[str]) -> str:
    """Why `candidate` is like `product_id`: bought together with it, the same attributes,
    else the same category (the reasons of the model's similar items)."""
    if candidate.bought_with > 0:
        return f"bought together with {product_id}"
    if shared:
        return f"same {', '.join(shared)} as {product_id}"
    return f"same category as {product_id}"


def catalogue_like(
    product_id: str,
    category: str | None,
    attributes: Mapping[str, Any],
    candidates: Sequence[CatalogueCandidate],
    count: int,
) -> list[Scored]:
    """Up to `count` of `candidates` like `product_id` (of `category`, with `attributes`),
    never itself: those bought together with it (most orders first), then those of its
    category, most shared attributes first; then the most sold, the lowest id (a
    candidate listed twice counts once, its last entry). Scores fall down the list in the
    content band (`bands.content_band`) by place alone, so a shorter read scores its items as
    a longer one does, never above a co-purchase of a trained model."""
    if count <= 0:
        return []
    kept = [
        c
        for c in {c.product_id: c for c in candidates}.values()
        if c.product_id != product_id
        and (c.bought_with > 0 or (category is not None and c.category == category))
    ]
    shared = {c.product_id: shared_attributes(attributes, c.attributes) for c in kept}
    kept.sort(key=lambda c: (-c.bought_with, -len(shared[c.product_id]), -c.sold, c.product_id))
    chosen = kept[:count]
    return [
        Scored(
            c.product_id,
            round(content_band(1 / (1 + place)), 6),
            like_reason(product_id, c, shared[c.product_id]),
        )
        for place, c in enumerate(chosen)
    ]
