"""Similar items of a product: item-to-item co-occurrence, with a content back-off.

Items most often bought by the same customers (cosine-damped co-occurrence) come first;
a product with fewer than CONTENT_MIN_NEIGHBOURS of those (or none, never bought) backs
off to products of the same category (`content`); global popularity fills up. The rules
apply as to every list. Scores: see `bands`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import BoolArray
from mgrecs.engine.bands import CONTENT_FLOOR, content_band, similarity_band
from mgrecs.engine.catalog import Catalog
from mgrecs.engine.content import content_neighbours
from mgrecs.engine.dataset import NO_REGION
from mgrecs.engine.fill import FillOrder, PopularityFill
from mgrecs.engine.ids import Ids
from mgrecs.engine.records import Scored
from mgrecs.engine.rules import (
    NO_RULES,
    Rules,
    allowed_products,
    eligible_promoted,
    insert_promoted,
)

CONTENT_MIN_NEIGHBOURS = 3
"""Similar items of a product with fewer co-purchase neighbours add content neighbours."""


@dataclass(frozen=True, eq=False)
class SimilarItems:
    """Similar-item lists from the item similarity, the catalogue and the popularity fill."""

    similarity: sparse.csr_matrix
    """Item-to-item co-occurrence, cosine-damped (`cooccurrence`)."""
    catalog: Catalog
    ids: Ids
    fill: PopularityFill

    def similar_items(self, item_id: str, k: int, rules: Rules = NO_RULES) -> list[Scored]:
        """Items most often bought by the same customers; with fewer than
        CONTENT_MIN_NEIGHBOURS of those, products of the same category (nearest price band,
        then most similar name) follow; global popularity fills up. A catalogue product
        nobody bought gets content neighbours; an unknown id gets nothing."""
        if item_id not in self.catalog.index or k <= 0:
            return []
        allowed = allowed_products(self.catalog, rules)
        return self._similar(item_id, k, rules, allowed, self.fill.order(NO_REGION, allowed))

    def similar_all(self, item_ids: Sequence[str], k: int) -> dict[str, list[Scored]]:
        """`similar_items(i, k)` (no rules) of each of `item_ids` (batch inference): the
        catalogue mask and the fill order are worked out once, not once per product."""
        allowed = allowed_products(self.catalog, NO_RULES)
        fill_order = self.fill.order(NO_REGION, allowed)
        return {
            item_id: self._similar(item_id, k, NO_RULES, allowed, fill_order)
            if item_id in self.catalog.index and k > 0
            else []
            for item_id in item_ids
        }

    def _similar(
        self, item_id: str, k: int, rules: Rules, allowed: BoolArray, fill_order: FillOrder
    ) -> list[Scored]:
        """`similar_items` of a catalogue product with the rules' mask and fill order."""
        item = self.catalog.index[item_id]
        scored: list[Scored] = []
        chosen = np.zeros(0, dtype=np.int64)
        if item < len(self.ids.item_ids):
            lo, hi = self.similarity.indptr[item], self.similarity.indptr[item + 1]
            columns = self.similarity.indices[lo:hi]
            values = self.similarity.data[lo:hi]
            kept = allowed[columns]
            columns, values = columns[kept], values[kept]
            order = np.lexsort((columns, -values))[:k]
            chosen = columns[order].astype(np.int64)
            scored = [
                Scored(self.ids.item_ids[j], similarity_band(v), f"bought together with {item_id}")
                for j, v in zip(chosen.tolist(), values[order].tolist(), strict=True)
            ]
        if len(scored) < CONTENT_MIN_NEIGHBOURS:
            candidates = allowed.copy()
            candidates[chosen] = False
            content, closeness = content_neighbours(self.catalog, item, candidates, k - len(scored))
            scored += [
                Scored(self.catalog.product_ids[j], content_band(c), f"same category as {item_id}")
                for j, c in zip(content.tolist(), closeness.tolist(), strict=True)
            ]
            chosen = np.concatenate([chosen, content])
        skip = {item, *chosen.tolist()}
        scored += self.fill.fill(NO_REGION, k - len(scored), skip, fill_order, CONTENT_FLOOR)
        return insert_promoted(
            scored,
            eligible_promoted(self.catalog, rules, allowed, [item]),
            k,
            rules.promoted_share,
        )
