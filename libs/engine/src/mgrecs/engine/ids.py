"""The model's id lists and their positions: customers, bought products and regions are
numbered once at training, and every list is worked out on those numbers."""

from functools import cached_property

import numpy as np

from mgrecs.engine.arrays import IntArray, ObjectArray
from mgrecs.engine.dataset import NO_REGION


class Ids:
    """Customer, item (bought product) and region ids in model order, with reverse maps."""

    def __init__(self, customer_ids: list[str], item_ids: list[str], regions: list[str]) -> None:
        self.customer_ids = customer_ids
        self.item_ids = item_ids
        self.regions = regions
        self.customer_index = {c: n for n, c in enumerate(customer_ids)}
        self.item_index = {i: n for n, i in enumerate(item_ids)}
        self.region_index = {r: n for n, r in enumerate(regions)}

    @cached_property
    def item_names(self) -> ObjectArray:
        """The item ids as an object array, to pick many of them at once."""
        return np.array(self.item_ids, dtype=object)

    def region_number(self, region: str | None) -> int:
        """The region's index; NO_REGION for None or a region the model never saw."""
        return NO_REGION if region is None else self.region_index.get(region, NO_REGION)

    def known_items(self, history: list[str]) -> IntArray:
        """Sorted distinct indices of the history items the model knows."""
        known = {self.item_index[i] for i in history if i in self.item_index}
        return np.array(sorted(known), dtype=np.int64)
