"""Products: the catalogue search, and similar products (cache, then the engine in real
time, then the catalogue)."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from mgrecs.api.deps import (
    ClockDep,
    EngineDep,
    NamesDep,
    NewProductsDep,
    RepositoryDep,
    RulesDep,
    ServedDep,
    SettingsDep,
)
from mgrecs.api.engine import Engine, EngineUnavailable
from mgrecs.api.metrics import count_answer
from mgrecs.api.new_items import similar_candidates, similar_items_with_new
from mgrecs.api.recommendations import cached_items, freshness
from mgrecs.api.repository import CachedList, Repository
from mgrecs.api.routes.params import Categories, Limit, ProductId, ProductIds
from mgrecs.api.rule_book import apply_items
from mgrecs.api.schemas.products import (
    CatalogueProduct,
    ProductNames,
    ProductSearch,
    SimilarProducts,
    SimilarSource,
)
from mgrecs.api.schemas.shared import ErrorMessage, RecommendedItem
from mgrecs.engine.content import catalogue_like

router = APIRouter(prefix="/v1/products", tags=["products"])

SearchText = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[^\x00]*$",
        description="part of the id or name, any case (empty: every product)",
        examples=["lamp"],
    ),
]


@router.get("", response_model=ProductSearch, summary="Search the catalogue by id or name")
async def search_products(
    repository: RepositoryDep,
    q: SearchText = None,
    category: Categories = None,
    limit: Limit = 20,
) -> ProductSearch:
    """Products whose id or name contains `q`, sold or not (a product the catalogue
    announced is found before anyone buys it): the exact id first, then by name."""
    found = await repository.search_products(q, category, limit)
    return ProductSearch(query=q, items=[CatalogueProduct(**asdict(p)) for p in found])


@router.get("/names", response_model=ProductNames, summary="The names of some products")
async def product_names(repository: RepositoryDep, ids: ProductIds) -> ProductNames:
    """`?id=P0015&id=P0039`: each product's catalogue name, in one query (the dashboard
    names the products of an answer with it; the answers' reasons are named already)."""
    return ProductNames(names=await repository.product_names(ids))


@router.get(
    "/{product_id}/similar",
    response_model=SimilarProducts,
    responses={404: {"model": ErrorMessage, "description": "unknown product"}},
    summary="Products similar to one product",
)
async def similar_products(
    product_id: ProductId,
    repository: RepositoryDep,
    engine: EngineDep,
    keeper: RulesDep,
    settings: SettingsDep,
    clock: ClockDep,
    names: NamesDep,
    served: ServedDep,
    new_products: NewProductsDep,
    limit: Limit = 10,
) -> SimilarProducts:
    """The nightly cached list; for products without one, or when the cache is stale (past
    `cache_ttl_hours`), the engine in real time. When the engine is down: the stale cached
    list (`stale: true`). A product with no cached list that never sold, or that the engine
    has nothing for (launched since the last retrain, or the engine down), is answered from
    the catalogue (source `catalogue`): the products first bought together with it, then
    those of its category sharing most of its attributes, then the most sold of them; else
    an empty list with source `none`.

    Products launched since the last retrain take `new_items_share` of the slots: those
    first bought together with this product, then those of its category sharing most of its
    attributes (docs/concepts.md, New products; kept in memory, so they cost no query of
    their own when there are none). The business rules not scoped to a region apply (never
    inserting the product itself). `model_version` names the version that made the list
    (the cache generation's, or the one the engine serves; null from the catalogue)."""
    now = clock()
    rules = keeper.applicable(None, now)
    asked = rules.candidates(limit, settings.rules_extra_candidates)
    new = similar_candidates(new_products, settings, now, asked)
    cached = await repository.similar_cache(product_id, new)
    answer = await _similar(product_id, cached, repository, engine, asked)
    part = None if cached is None else cached.product
    items = await similar_items_with_new(
        repository, settings, product_id, answer.items, asked, new, part
    )
    if not (rules.empty and asked == limit):
        items = apply_items(items, limit, rules, exclude=(product_id,))
    if items is not answer.items:
        answer = answer.model_copy(update={"items": items})
    served.record(
        "similar",
        answer.items,
        answer.source,
        product_id=product_id,
        model_version=answer.model_version,
        rule_ids=rules.key,
    )
    return answer.model_copy(update={"items": await names.name_items(answer.items)})


async def _similar(
    product_id: str,
    cached: CachedList | None,
    repository: Repository,
    engine: Engine,
    limit: int,
) -> SimilarProducts:
    """The similar items of the cache (`cached`, already read), the engine or the catalogue
    (see `similar_products`)."""
    if cached is not None and not (cached.age and cached.age.stale):
        return _cached_answer(product_id, cached, limit)
    like: list[RecommendedItem] | None = None  # the catalogue's answer, once read
    if cached is None:
        sold = await repository.product_sold(product_id)
        if sold is None:
            raise HTTPException(status_code=404, detail=f"unknown product {product_id}")
        if not sold:  # no co-purchase to learn from: its attributes say more than the engine
            like = await _catalogue_items(product_id, repository, limit)
            if like:
                return _catalogue_answer(product_id, like)
    try:
        items = await engine.similar_to(product_id, limit)
    except EngineUnavailable:
        items = []
    if not items and cached is not None:
        return _cached_answer(product_id, cached, limit)
    if not items:
        if like is None:
            like = await _catalogue_items(product_id, repository, limit)
        return _catalogue_answer(product_id, like)
    count_answer("similar", "realtime")
    return SimilarProducts(
        product_id=product_id,
        source="realtime",
        updated_at=None,
        items=items,
        model_version=await repository.active_model_version(),
    )


def _cached_answer(product_id: str, cached: CachedList, limit: int) -> SimilarProducts:
    count_answer("similar", "cache")
    return SimilarProducts(
        product_id=product_id,
        source="cache",
        updated_at=cached.updated_at,
        items=cached_items(cached.items, limit),
        model_version=cached.model_version,
        **freshness(cached.age),
    )


async def _catalogue_items(
    product_id: str, repository: Repository, limit: int
) -> list[RecommendedItem]:
    """The products like `product_id` from the catalogue (`content.catalogue_like`)."""
    candidates, category, attributes = await repository.catalogue_like(product_id, limit)
    return [
        RecommendedItem(product_id=s.item_id, score=s.score, reason=s.reason or None)
        for s in catalogue_like(product_id, category, attributes, candidates, limit)
    ]


def _catalogue_answer(product_id: str, items: list[RecommendedItem]) -> SimilarProducts:
    """The catalogue's answer, source `catalogue`; source `none` when it is empty."""
    source: SimilarSource = "catalogue" if items else "none"
    count_answer("similar", source)
    return SimilarProducts(product_id=product_id, source=source, updated_at=None, items=items)
