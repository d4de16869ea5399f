"""The popularity fill: what tops up every list short of k and answers new customers.

Popularity, per region then global, fills a list up; every TRENDING_EVERY-th fill slot goes
to a product trending in the region (then globally), rising in the last days (see
`trending`), so new customers also see what picks up now. Reasons: "popular in <region>" /
"popular", "trending in <region>" / "trending". Scores: see `bands`.
"""

from dataclasses import dataclass
from typing import NamedTuple

from mgrecs.engine.arrays import BoolArray, IntArray
from mgrecs.engine.ids import Ids
from mgrecs.engine.popularity import Popularity
from mgrecs.engine.records import Scored

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


@dataclass(frozen=True, eq=False)
class PopularityFill:
    """Fills lists from the fitted popularity, named with the model's ids."""

    popularity: Popularity
    ids: Ids

    def order(self, region: int, allowed: BoolArray) -> FillOrder:
        """The fill order as seen from `region`, only the `allowed` items."""
        mask = allowed[: len(self.ids.item_ids)]
        popular = self.popularity.order(region)
        trending = self.popularity.trending_order(region)
        return FillOrder(popular[mask[popular]], trending[mask[trending]])

    def popular(self, region: int, k: int, allowed: BoolArray) -> list[Scored]:
        """The `allowed` items most popular in `region` (then globally) with trending ones
        mixed in, as in every fill: the cold-start list; scores 0..1 with 1 the top item."""
        return self.fill(region, k, set(), self.order(region, allowed), 1.0)

    def fill(
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
                        Scored(
                            self.ids.item_ids[j], result[-1].score, self._trend_reason(region, j)
                        )
                    )
                    continue
            while p < len(popular) and popular[p] in taken:
                p += 1
            if p == len(popular):
                break
            j = popular[p]
            taken.add(j)
            result.append(self.popular_item(region, j, ceiling))
        return result

    def popular_item(self, region: int, item: int, ceiling: float) -> Scored:
        """Item `item` scored by its popularity in `region`, in [0, ceiling]."""
        score = ceiling * float(self.popularity.scores(region)[item])
        return Scored(self.ids.item_ids[item], score, self._popular_reason(region, item))

    def _popular_reason(self, region: int, item: int) -> str:
        if self.popularity.in_region(region)[item]:
            return f"popular in {self.ids.regions[region]}"
        return "popular"

    def _trend_reason(self, region: int, item: int) -> str:
        if self.popularity.is_trending_in(region, item):
            return f"trending in {self.ids.regions[region]}"
        return "trending"
