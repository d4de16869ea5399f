"""New products in the lists served: the "new in your categories" slot of a customer's list
and the new products among a product's similar items, added to whatever source answered
(cache, real time, popularity), since no model built before their launch knows them.
The choice and the placement are `mgrecs.engine.new_items`'; `new_items_share` sets the slots.

The new products themselves (few: launched since the last retrain) are kept in memory by
`NewProductsKeeper`, read again every `new_items_refresh_seconds`, so a customer's list
costs no query for them: none at all when no new product is of the asked categories, else
what is the customer's own (their categories, which new ones they bought) comes with the
cached list's read, or in one small query when the list is not read from the cache. A
product's similar items alike: no query without new products, else the product's own part
(its category and attributes, the orders holding it with each new product) comes with its
cached similar items, or in one small query.
"""

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from mgrecs.api.repository import Repository, new_product
from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.engine.new_items import (
    NewProduct,
    new_for_customer,
    new_like,
    new_slot_count,
    place_new,
)
from mgrecs.engine.records import Scored
from mgrecs.store import products
from mgrecs.store.products import CustomerCategories, ProductLikeNew

log = get_logger(__name__)

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class NewProducts:
    """The new products as last read, and when the active model was trained (epoch
    seconds; None before the first retrain)."""

    products: tuple[NewProduct, ...] = ()
    trained_at: float | None = None


class NewProductsKeeper:
    """The current `NewProducts` (`current`), kept fresh by `run` (a task of the lifespan)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        recipe: str,
        max_days: int,
        refresh_seconds: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._pool = pool
        self._recipe = recipe
        self._max_days = max_days
        self._refresh = refresh_seconds
        self._clock = clock
        self.current = NewProducts()
        self.customer_reads = 0
        """Queries made for a customer's categories (tests and figures count them)."""

    async def refresh(self) -> None:
        rows, trained_at = await products.new_products(
            self._pool, self._recipe, self._max_days, self._clock()
        )
        self.current = NewProducts(tuple(new_product(row) for row in rows), trained_at)

    async def run(self) -> None:
        """Refresh forever (errors logged, the products kept)."""
        while True:
            await asyncio.sleep(self._refresh)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the new products stay as they were
                log.warning("new_products_not_refreshed", error=str(exc))

    def launched(self, now: datetime) -> list[NewProduct]:
        """The new products at `now`: launched after the active model's training, or within
        `new_items_days` before any, and not after `now` (with a category or not)."""
        found = self.current
        end = now.timestamp()
        start = (
            found.trained_at
            if found.trained_at is not None
            else (end - self._max_days * SECONDS_PER_DAY)
        )
        return [p for p in found.products if start < p.launched_at <= end]

    def new_at(self, now: datetime, categories: list[str] | None) -> list[NewProduct]:
        """The new products at `now` with a category, of `categories` when given."""
        return [
            p
            for p in self.launched(now)
            if p.category is not None and (categories is None or p.category in categories)
        ]

    async def customer_part(
        self, customer_id: str, candidates: Sequence[NewProduct]
    ) -> CustomerCategories:
        """`customer_id`'s weight of each of the `candidates`' categories and which of them
        they bought (one query; the cached list's read brings it along when it can)."""
        self.customer_reads += 1
        return await products.customer_categories(
            self._pool,
            customer_id,
            sorted({p.category for p in candidates if p.category}),
            [p.product_id for p in candidates],
        )


def slot_candidates(
    keeper: NewProductsKeeper,
    settings: Settings,
    now: datetime,
    limit: int,
    categories: list[str] | None,
) -> list[NewProduct]:
    """The new products a customer's list of `limit` may place now (none when the slot
    has no room: `new_items_share` 0)."""
    if new_slot_count(limit, settings.new_items_share, limit) == 0:
        return []
    return keeper.new_at(now, categories)


def _scored(items: list[RecommendedItem]) -> list[Scored]:
    return [Scored(i.product_id, i.score, i.reason or "") for i in items]


def _items(scored: list[Scored]) -> list[RecommendedItem]:
    return [
        RecommendedItem(product_id=s.item_id, score=s.score, reason=s.reason or None)
        for s in scored
    ]


async def customer_items_with_new(
    keeper: NewProductsKeeper,
    settings: Settings,
    user_id: str,
    items: list[RecommendedItem],
    limit: int,
    candidates: Sequence[NewProduct],
    customer: CustomerCategories | None = None,
) -> list[RecommendedItem]:
    """`items` (a customer's list, best first) with those of `candidates` (`slot_candidates`)
    of the customer's categories at their `new_items_share` of the `limit` slots, reason `new
    in <category>`; as they were when there is none or the share is 0. `customer`: the
    customer's part when already read (else one query, only when there are candidates)."""
    share = settings.new_items_share
    slots = new_slot_count(limit, share, limit)
    if slots == 0 or not candidates:
        return items
    if customer is None:
        customer = await keeper.customer_part(user_id, candidates)
    listed = {i.product_id for i in items}
    new = new_for_customer(list(candidates), customer.weights, listed | customer.bought, slots)
    if not new:
        return items
    return _items(place_new(_scored(items), new, limit, share))


def similar_candidates(
    keeper: NewProductsKeeper, settings: Settings, now: datetime, limit: int
) -> list[NewProduct]:
    """The new products a product's similar items of `limit` may place now (none when the
    slot has no room: `new_items_share` 0)."""
    if new_slot_count(limit, settings.new_items_share, limit) == 0:
        return []
    return keeper.launched(now)


async def similar_items_with_new(
    repository: Repository,
    settings: Settings,
    product_id: str,
    items: list[RecommendedItem],
    limit: int,
    candidates: Sequence[NewProduct],
    product: ProductLikeNew | None = None,
) -> list[RecommendedItem]:
    """`items` (a product's similar items, best first) with those of `candidates`
    (`similar_candidates`) bought with it or of its category at their `new_items_share` of
    the `limit` slots; as they were when there is none or the share is 0. `product`: the
    product's part when already read with its cached list (else one query, only when there
    are candidates)."""
    share = settings.new_items_share
    slots = new_slot_count(limit, share, limit)
    if slots == 0 or not candidates:
        return items
    if product is None:
        product = await repository.product_like_new(product_id, candidates)
    counted = [
        dataclasses.replace(c, bought_with=product.bought_with.get(c.product_id, 0))
        for c in candidates
    ]
    listed = {i.product_id for i in items}
    new = new_like(product_id, product.category, product.attributes, counted, listed, slots)
    if not new:
        return items
    return _items(place_new(_scored(items), new, limit, share))
