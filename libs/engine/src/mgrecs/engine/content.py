"""Content-based neighbours: the back-off of similar items for products with few or no
co-purchases.

Candidates share the product's category; the nearest price band comes first (bands double:
[1, 2), [2, 4), ... so "nearest" is relative, as shoppers compare prices), then the larger
overlap of lower-cased name tokens (Jaccard), then the catalogue index. Simple and
deterministic: no learned embedding to retrain or explain.
"""

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.catalog import NO_CATEGORY, Catalog

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
