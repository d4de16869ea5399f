"""Data access for the API: every read the routes need, over one asyncpg pool."""

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from mgrecs.common.quality import QualityReport
from mgrecs.engine.content import CatalogueCandidate
from mgrecs.engine.new_items import NewProduct
from mgrecs.engine.repurchase import DEFAULT_INTERVAL_DAYS, BuyAgainParams
from mgrecs.engine.visitors import ProductActivity
from mgrecs.store import cache, customers, model_versions, order_reads, products, repurchase
from mgrecs.store.health import ping
from mgrecs.store.impact import Dimension
from mgrecs.store.impact_report import ImpactReport, impact_report
from mgrecs.store.model_versions import RECIPE
from mgrecs.store.products import CustomerCategories, ProductLikeNew
from mgrecs.store.reports import latest_reports

PING_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CacheAge:
    """How old the current cache generation is, and whether that is past `cache_ttl_hours`
    (it still serves then, marked stale: the infer is late or failed)."""

    seconds: float
    stale: bool


@dataclass(frozen=True)
class CachedList:
    """A cached recommendation list as the batch wrote it: `[{product_id, score}, ...]`."""

    items: list[dict[str, Any]]
    updated_at: datetime | None
    model_version: str | None = None
    """The model version the cache generation was scored with (when recorded)."""
    outdated: bool = False
    """The customer has orders that reached the database after the row was written."""
    age: CacheAge | None = None
    """How old the generation the row belongs to is."""
    customer: CustomerCategories | None = None
    """The customer's part of the "new in your categories" slot, when read with the row."""
    region: str | None = None
    """The customer's region, read with the row (None: none known)."""
    product: ProductLikeNew | None = None
    """A similar-items row's product part of the new products' slot, when read with it."""


@dataclass(frozen=True)
class Customer:
    customer_id: str
    region: str | None


@dataclass(frozen=True)
class PurchaseHistory:
    """A customer's purchases of products on sale, one entry per product in aligned lists
    (in how many distinct orders, when last in epoch seconds, and the repurchase statistics:
    the version's, or the assumed ones when it never saw the product), and how to score them.
    Plain lists: a customer has a few products, which numpy arrays would only slow down."""

    product_ids: list[str]
    orders: list[int]
    last_at: list[float]
    repeat_rates: list[float]
    interval_days: list[float]
    params: BuyAgainParams
    version: str | None
    """The model version that stored the statistics and parameters (None: the defaults)."""


NO_STATS_REPEAT_RATE = 1.0
"""Without stored statistics every product counts as re-buyable (as fit_repurchase says of
an empty history), and due after DEFAULT_INTERVAL_DAYS."""


@dataclass(frozen=True)
class ProductCount:
    """A product and how many sampled users (or recent buyers) it has."""

    product_id: str
    count: int
    product_name: str | None = None
    category: str | None = None
    mean_score: float | None = None


@dataclass(frozen=True)
class RegionSample:
    """The first customers of a region's window order, and how many active ones it has."""

    customers: list[str]
    population: int


@dataclass(frozen=True)
class RegionGeneration:
    """The current cache generation, as far as one region's exact figures go."""

    generation: int
    completed_at: datetime
    population: int
    """The region's active customers the generation's infer counted."""
    age: CacheAge


@dataclass(frozen=True)
class RegionCounts:
    region: str
    customers: int
    active_customers: int


def _as_list(value: Any) -> list[dict[str, Any]]:
    """Tolerate cache rows written by other tools: anything but a list of objects is empty."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and "product_id" in item]


@dataclass(frozen=True)
class RepurchaseFigures:
    """A model version's buy-again parameters and per-product (repeat rate, interval days),
    as fitted at `fitted_at`: the api holds the served version's, read once per version and
    fitting rather than per request."""

    version: str
    fitted_at: datetime
    params: BuyAgainParams
    assumed: tuple[float, float]
    """The (repeat rate, interval days) of a product the version never saw."""
    stats: dict[str, tuple[float, float]]


class Repository:
    """Reads of the cache and source tables; no HTTP knowledge here."""

    def __init__(
        self, pool: asyncpg.Pool, cache_ttl_hours: float = 0.0, served_recipe: str = RECIPE
    ) -> None:
        self._pool = pool
        self._served_recipe = served_recipe
        """The lineage real-time answers come from (`model_versions.mode_recipe`)."""
        self._ttl_seconds = cache_ttl_hours * 3600
        """A generation older than this is stale (0: never)."""
        self._figures: RepurchaseFigures | None = None
        """The served version's repurchase figures, as last read (`_repurchase`)."""
        self._figures_read = asyncio.Lock()
        """One read of new figures at a time: requests that wait for it use its result."""

    async def ping(self) -> None:
        """Raise unless the database answers within PING_TIMEOUT_SECONDS."""
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            await ping(self._pool)

    def _age(self, seconds: float) -> CacheAge:
        return CacheAge(seconds, stale=0 < self._ttl_seconds < seconds)

    async def cache_age(self) -> CacheAge | None:
        """How old the current cache generation is; None when no generation is current."""
        seconds = await cache.current_age(self._pool)
        return None if seconds is None else self._age(seconds)

    async def quality_reports(self, limit: int) -> list[tuple[int, QualityReport]]:
        """The newest data-quality reports, newest first."""
        return await latest_reports(self._pool, limit)

    async def impact(
        self,
        start: datetime,
        end: datetime,
        window_days: float,
        group_by: list[Dimension],
        holdout_arm: str,
    ) -> ImpactReport:
        """What recommendations earned in [start, end) (`mgrecs.store.impact_report`)."""
        return await impact_report(self._pool, start, end, window_days, group_by, holdout_arm)

    async def user_cache(self, user_id: str, new: Sequence[NewProduct] = ()) -> CachedList | None:
        """The customer's cached list; with `new` (new products), with the customer's part
        of their slot (`CachedList.customer`) in the same round trip."""
        if not new:
            row = await cache.user_list(self._pool, user_id)
            return None if row is None else self._user_list(row, "model_version")
        row = await products.user_list_with_categories(
            self._pool,
            user_id,
            sorted({p.category for p in new if p.category}),
            [p.product_id for p in new],
        )
        if row is None:
            return None
        found = self._user_list(row, "model_version")
        return dataclasses.replace(found, customer=products.customer_part(row))

    def _user_list(self, row: asyncpg.Record, version_column: str) -> CachedList:
        """A customer's cached list from a row with `cache.USER_LIST`'s columns (the
        generation's model version under `version_column`)."""
        return CachedList(
            _as_list(row["recommendations"]),
            row["updated_at"],
            row[version_column],
            row["outdated"],
            self._age(row["age_seconds"]),
            region=row["region"],
        )

    async def active_model_version(self) -> str | None:
        """The version real-time answers come from (None before the first retrain)."""
        return await model_versions.served_version(self._pool, self._served_recipe)

    async def buy_again_inputs(self, user_id: str) -> tuple[PurchaseHistory, CachedList | None]:
        """The customer's purchase history and their cached list, in one round trip."""
        row = await repurchase.buy_again(self._pool, user_id, self._served_recipe)
        cached = self._user_list(row, "cache_model_version") if row["cached"] else None
        version = row["model_version"]
        figures = None if version is None else await self._repurchase(version, row["fitted_at"])
        return _history(row, figures), cached

    def _held(self, version: str, fitted_at: datetime) -> RepurchaseFigures | None:
        """The figures held, when they are `version`'s as fitted at `fitted_at` or later."""
        held = self._figures
        if held is not None and held.version == version and held.fitted_at >= fitted_at:
            return held
        return None

    async def _repurchase(self, version: str, fitted_at: datetime) -> RepurchaseFigures | None:
        """`version`'s figures as fitted at `fitted_at` (or later): those held, else read
        (after a promotion or a new fit: `BUY_AGAIN` names both). None: pruned since."""
        held = self._held(version, fitted_at)
        if held is not None:
            return held
        async with self._figures_read:
            held = self._held(version, fitted_at)
            if held is not None:
                return held
            row = await repurchase.figures(self._pool, version)
            if row is None:
                return None
            self._figures = RepurchaseFigures(
                version,
                row["fitted_at"],
                _params(row["params"]),
                (row["default_repeat_rate"], row["default_interval_days"]),
                dict(
                    zip(
                        row["product_ids"] or [],
                        zip(row["repeat_rates"] or [], row["interval_days"] or [], strict=True),
                        strict=True,
                    )
                ),
            )
            return self._figures

    async def similar_cache(
        self, product_id: str, new: Sequence[NewProduct] = ()
    ) -> CachedList | None:
        """The product's cached similar items with its generation's model version; with
        `new` (new products), with the product's part of their slot (`CachedList.product`)
        in the same round trip."""
        if not new:
            row = await cache.similar_list(self._pool, product_id)
        else:
            ids = [p.product_id for p in new]
            row = await products.similar_list_like_new(self._pool, product_id, ids)
        if row is None:
            return None
        found = CachedList(
            _as_list(row["similar_products"]),
            row["updated_at"],
            row["model_version"],
            age=self._age(row["age_seconds"]),
        )
        if not new:
            return found
        return dataclasses.replace(found, product=products.product_like_new_part(row))

    async def customer(self, customer_id: str) -> Customer | None:
        row = await customers.customer(self._pool, customer_id)
        return None if row is None else Customer(row["customer_id"], row["region"])

    async def product_sold(self, product_id: str) -> bool | None:
        """Whether any order names it; None for an id the catalogue does not know."""
        return await products.product_sold(self._pool, product_id)

    async def search_products(
        self, query: str | None, categories: list[str] | None, limit: int
    ) -> list[products.FoundProduct]:
        """Catalogue products by id or name (`mgrecs.store.products.search_products`)."""
        return await products.search_products(self._pool, query, categories, limit)

    async def product_names(self, product_ids: list[str]) -> dict[str, str]:
        """The names of those of `product_ids` the catalogue names."""
        return await products.product_names(self._pool, product_ids)

    async def region_exists(self, region: str) -> bool:
        return await customers.region_exists(self._pool, region)

    async def in_categories(self, product_ids: list[str], categories: list[str]) -> set[str]:
        """The products among `product_ids` whose category is one of `categories`."""
        return await products.in_categories(self._pool, product_ids, categories)

    async def popular(
        self,
        since: datetime,
        region: str | None,
        limit: int,
        categories: list[str] | None = None,
    ) -> list[ProductCount]:
        """Products with the most distinct buyers since `since` (in `region` when given, of
        `categories` when given)."""
        rows = await order_reads.popular(self._pool, since, region, limit, categories)
        return [ProductCount(row["product_id"], row["buyers"]) for row in rows]

    async def product_like_new(self, product_id: str, new: Sequence[NewProduct]) -> ProductLikeNew:
        """`product_id`'s part of the new products among its similar items, when no cached
        list brought it (`mgrecs.store.products.product_like_new`)."""
        return await products.product_like_new(self._pool, product_id, [p.product_id for p in new])

    async def catalogue_like(
        self, product_id: str, limit: int
    ) -> tuple[list[CatalogueCandidate], str | None, dict[str, Any]]:
        """Catalogue products on sale bought with `product_id` or of its category, best
        first, and its category and attributes (`content.catalogue_like`)."""
        rows = await products.catalogue_like(self._pool, product_id, limit)
        if not rows:
            return [], None, {}
        return (
            [
                CatalogueCandidate(
                    row["product_id"],
                    row["category"],
                    _attributes(row["attributes"]),
                    sold=row["sold"],
                    bought_with=row["bought_with"],
                )
                for row in rows
            ],
            rows[0]["of_category"],
            _attributes(rows[0]["of_attributes"]),
        )

    async def region_activity(
        self,
        region: str | None,
        now: datetime,
        active_since: datetime,
        window_start: datetime,
        baseline_start: datetime,
        categories: list[str] | None,
        limit: int,
        min_recent: int,
    ) -> tuple[list[ProductActivity], bool]:
        """The products bought in `region` (everywhere: None), most buyers since
        `active_since` first, with their buyers in the trending window and before it (see
        `order_reads.REGION_ACTIVITY`), and whether any line fell before the window."""
        rows = await order_reads.region_activity(
            self._pool,
            region,
            now,
            active_since,
            window_start,
            baseline_start,
            categories,
            limit,
            min_recent,
        )
        activity = [
            ProductActivity(r["product_id"], r["buyers"], r["recent"], r["baseline"]) for r in rows
        ]
        return activity, bool(rows and rows[0]["has_past"])

    async def buyers_of(self, since: datetime, product_ids: list[str]) -> dict[str, int]:
        """Distinct buyers since `since` per product of `product_ids` (absent: none)."""
        return await order_reads.buyers_of(self._pool, since, product_ids)

    async def region_sample(
        self, region: str, active_since: datetime, window_index: int, size: int
    ) -> RegionSample:
        rows = await customers.region_sample(self._pool, region, active_since, window_index, size)
        return RegionSample(
            [row["customer_id"] for row in rows], rows[0]["population"] if rows else 0
        )

    async def region_aggregate(
        self, user_ids: list[str], limit: int, categories: list[str] | None = None
    ) -> list[ProductCount]:
        """Per product: sampled users with it in their cached list, and its mean score."""
        rows = await cache.sampled_lists(self._pool, user_ids, limit, categories)
        return [_product_count(row) for row in rows]

    async def region_popular(
        self, region: str, since: datetime, limit: int, categories: list[str] | None = None
    ) -> tuple[list[ProductCount], int]:
        """Per product: the region's customers who bought it since `since` (the region page
        when no cached list answers), and how many customers bought anything (0: none)."""
        rows = await order_reads.region_popular(self._pool, region, since, limit, categories)
        return [_product_count(row) for row in rows], rows[0]["population"] if rows else 0

    async def region_generation(self, region: str) -> RegionGeneration | None:
        """The current generation, however old (None when none is current)."""
        row = await cache.region_generation(self._pool, region)
        if row is None:
            return None
        return RegionGeneration(
            row["generation"],
            row["completed_at"],
            row["population"],
            self._age(row["age_seconds"]),
        )

    async def region_exact(
        self, generation: int, region: str, limit: int, categories: list[str] | None = None
    ) -> list[ProductCount]:
        """Per product: the region's active customers who got it, from the batch's counts."""
        rows = await cache.region_exact(self._pool, generation, region, limit, categories)
        return [_product_count(row) for row in rows]

    async def regions(self, active_since: datetime) -> list[RegionCounts]:
        rows = await customers.region_counts(self._pool, active_since)
        return [
            RegionCounts(row["region"], row["customers"], row["active_customers"]) for row in rows
        ]


def _history(row: asyncpg.Record, figures: RepurchaseFigures | None) -> PurchaseHistory:
    """`repurchase.BUY_AGAIN`'s purchases scored with `figures`: statistics the version lacks
    are its assumed ones; without figures (no version stored any), `NO_STATS_REPEAT_RATE`
    and `DEFAULT_INTERVAL_DAYS` for every product, and the default parameters."""
    ids: list[str] = row["product_ids"] or []
    if figures is None:
        rates = [NO_STATS_REPEAT_RATE] * len(ids)
        intervals = [DEFAULT_INTERVAL_DAYS] * len(ids)
    else:
        get, assumed = figures.stats.get, figures.assumed
        stats = [get(p, assumed) for p in ids]
        rates = [rate for rate, _ in stats]
        intervals = [interval for _, interval in stats]
    return PurchaseHistory(
        ids,
        row["orders"] or [],
        row["last_at"] or [],
        rates,
        intervals,
        BuyAgainParams() if figures is None else figures.params,
        None if figures is None else figures.version,
    )


def _params(stored: Any) -> BuyAgainParams:
    """Stored parameters (`BuyAgainParams.as_dict()`); unknown or unreadable ones: defaults."""
    known = {field.name for field in fields(BuyAgainParams)}
    if not isinstance(stored, dict):
        return BuyAgainParams()
    try:
        return BuyAgainParams(**{k: v for k, v in stored.items() if k in known})
    except (TypeError, ValueError):
        return BuyAgainParams()


def _product_count(row: asyncpg.Record) -> ProductCount:
    return ProductCount(
        row["product_id"],
        row["users"],
        product_name=row["product_name"],
        category=row["category"],
        mean_score=row["mean_score"],
    )


def _attributes(value: Any) -> dict[str, Any]:
    """A product's stored attributes; anything but a JSON object is none."""
    return value if isinstance(value, dict) else {}


def new_product(row: asyncpg.Record) -> NewProduct:
    """A new product as `mgrecs.store.products` reads it."""
    return NewProduct(
        row["product_id"],
        row["category"],
        row["launched_at"],
        buyers=row["buyers"],
        attributes=_attributes(row["attributes"]),
        bought_with=row["bought_with"],
    )
