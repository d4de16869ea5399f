"""FastAPI dependencies: the process-wide objects the lifespan put on `app.state`.

Async on purpose: FastAPI runs plain `def` dependencies in its thread pool, a thread hop per
dependency per request for what is an attribute read. The per-customer routes and the region
page (the hot ones) take the request and call `serving` instead: each `Depends` costs FastAPI
a resolution of its own per request, a tenth of the buy-again endpoint's CPU for two
attribute reads."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from mgrecs.api.answer_cache import AnswerCache
from mgrecs.api.engine import Engine
from mgrecs.api.new_items import NewProductsKeeper
from mgrecs.api.product_names import NameMemo
from mgrecs.api.repository import Repository
from mgrecs.api.rule_book import RuleKeeper
from mgrecs.api.sampling import SampleMemo
from mgrecs.api.served_recorder import ServedRecorder
from mgrecs.common.settings import Settings

Clock = Callable[[], datetime]
"""What time it is (UTC): the region page's windows follow it, so tests can move it."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_repository(request: Request) -> Repository:
    repository: Repository = request.app.state.repository
    return repository


async def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@dataclass(frozen=True)
class Serving:
    """What the lists are served from (the per-customer routes and the region page need
    nearly all of it), made once by the lifespan."""

    repository: Repository
    engine: Engine
    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    rules: RuleKeeper
    names: NameMemo
    new_products: NewProductsKeeper
    served: ServedRecorder
    """Records what the lists answered (topic `served`)."""
    region_samples: SampleMemo
    answers: AnswerCache


def serving(request: Request) -> Serving:
    """The lifespan's `Serving`, without a dependency resolution."""
    found: Serving = request.app.state.serving
    return found


async def get_answers(request: Request) -> AnswerCache:
    answers: AnswerCache = request.app.state.answers
    return answers


async def get_names(request: Request) -> NameMemo:
    memo: NameMemo = request.app.state.names
    return memo


async def get_served(request: Request) -> ServedRecorder:
    recorder: ServedRecorder = request.app.state.served
    return recorder


async def get_new_products(request: Request) -> NewProductsKeeper:
    keeper: NewProductsKeeper = request.app.state.new_products
    return keeper


async def get_rules(request: Request) -> RuleKeeper:
    keeper: RuleKeeper = request.app.state.rules
    return keeper


SettingsDep = Annotated[Settings, Depends(get_settings)]
RepositoryDep = Annotated[Repository, Depends(get_repository)]
EngineDep = Annotated[Engine, Depends(get_engine)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
ClockDep = Annotated[Clock, Depends(get_clock)]
AnswerCacheDep = Annotated[AnswerCache, Depends(get_answers)]
RulesDep = Annotated[RuleKeeper, Depends(get_rules)]
NamesDep = Annotated[NameMemo, Depends(get_names)]
ServedDep = Annotated[ServedRecorder, Depends(get_served)]
NewProductsDep = Annotated[NewProductsKeeper, Depends(get_new_products)]
