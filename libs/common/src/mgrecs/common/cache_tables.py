"""The cache's tables and its flip lock, shared by the batch (which writes generations) and
whoever invalidates them (the CLI and the API's admin endpoint)."""

from dataclasses import dataclass

FLIP_LOCK = "SELECT pg_advisory_xact_lock(hashtext('mgrecs:cache-flip'))"
"""Taken by a generation's flip and by invalidation, so the two never race for `current`."""


@dataclass(frozen=True)
class Table:
    view: str
    """The name the readers use: a view of the current generation."""
    key: str
    payload: str

    @property
    def rows(self) -> str:
        """The partitioned table holding every generation's rows."""
        return f"{self.view}_rows"

    def partition(self, generation: int) -> str:
        return partition(self.view, generation)


USERS = Table("offline_user_recommendations", "user_id", "recommendations")
SIMILAR = Table("offline_similar_items", "product_id", "similar_products")
TABLES = (USERS, SIMILAR)
AGGREGATES_VIEW = "region_product_aggregates"
"""Per region and product, of the current generation (`mgrecs.batch.aggregates`)."""
PARTITIONED = (*(table.view for table in TABLES), AGGREGATES_VIEW)
"""Views whose `<view>_rows` table has one `<view>_g<generation>` partition per generation."""


def partition(view: str, generation: int) -> str:
    return f"{view}_g{int(generation)}"
