"""One shard of an infer run: score the generation's model for the shard's customers and
products, and write the slice and the shard's completion in one transaction.

A shard is every active customer (and every product) whose stable hash modulo the shard
count is the shard's number; CRC-32, not Python's per-process salted `hash`, so every worker
agrees. A shard is idempotent: a worker killed midway leaves nothing (its transaction never
committed), and a shard already done is skipped.

The business rules' filters in force when the shard is scored apply to what it writes
(`mgrecs.batch.rules`).
"""

import asyncio
import os
import socket
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from mgrecs.batch import aggregates, cache, generations
from mgrecs.batch.aggregates import RegionTally
from mgrecs.batch.rules import Filters, current_filters
from mgrecs.common.artifacts import local_copy
from mgrecs.common.logging import get_logger
from mgrecs.common.schemas import InferShard
from mgrecs.common.settings import Settings
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.records import Scored
from mgrecs.store import cache_generations
from mgrecs.store.cache_generations import Generation, ShardCounts
from mgrecs.store.customers import active_customer_regions
from mgrecs.store.order_reads import purchase_histories, revised_customers

log = get_logger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
"""Recorded with each shard it writes (`cache_shards.worker`)."""


def shard_of(key: str, shards: int) -> int:
    """The shard a customer or product id belongs to, the same in every process."""
    return zlib.crc32(key.encode()) % shards


class ModelCache:
    """Keeps the last loaded model and the last generation's active customers: the shards of
    one generation a worker takes share them (read once, not once per shard)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._uri: str | None = None
        self._model: RecommenderModel | None = None
        self._generation: int | None = None
        self._active: dict[str, str | None] = {}

    async def load(self, uri: str) -> RecommenderModel:
        if self._model is None or self._uri != uri:
            path = await local_copy(uri, self._settings)
            self._model = await asyncio.to_thread(RecommenderModel.load, path)
            self._uri = uri
        return self._model

    async def active(self, pool: asyncpg.Pool, generation: Generation) -> dict[str, str | None]:
        """The generation's active customers with their regions."""
        if self._generation != generation.generation:
            assert generation.active_since is not None
            self._active = {}  # the previous generation's list goes before the next is read
            self._active = await active_customer_regions(pool, generation.active_since)
            self._generation = generation.generation
        return self._active


@dataclass(frozen=True)
class Slice:
    users: dict[str, list[Scored]]
    similar: dict[str, list[Scored]]
    unknown: int
    regions: RegionTally


def _score(
    model: RecommenderModel,
    customers: list[str],
    newcomers: dict[str, tuple[str | None, list[str]]],
    products: list[str],
    settings: Settings,
    filters: Filters | None = None,
) -> tuple[dict[str, list[Scored]], dict[str, list[Scored]]]:
    """CPU-bound part (runs in a thread). Customers who ordered after the model was trained,
    or whose orders were revised since, are scored from their purchase history in the
    database (`newcomers`). `filters`: the business rules' filters in force."""
    k = settings.recommendations_per_user
    n_similar = settings.similar_per_product
    if filters is not None:
        k, n_similar = filters.candidates(k), filters.candidates(n_similar)
    exclude = settings.exclude_purchased
    known = [c for c in customers if c not in newcomers]
    users = model.recommend_all(k, known, exclude_purchased=exclude)
    for customer, (region, history) in newcomers.items():
        users[customer] = model.recommend(history, region, k, exclude)
    similar = model.similar_all(products, n_similar)
    if filters is not None:
        users = filters.users(users, settings.recommendations_per_user)
        similar = filters.similar(similar, settings.similar_per_product)
    return users, similar


async def score_slice(
    pool: asyncpg.Pool,
    settings: Settings,
    generation: Generation,
    shard: int,
    models: ModelCache,
) -> Slice:
    assert generation.artifact_uri is not None
    model = await models.load(generation.artifact_uri)
    everyone = await models.active(pool, generation)
    regions = {c: r for c, r in everyone.items() if shard_of(c, generation.shards) == shard}
    customers = list(regions)
    known = set(model.customer_ids)
    unknown = [c for c in customers if c not in known]
    revised: list[str] = []  # known, but their history in the model is out of date
    if generation.model_version is not None:
        changed = await revised_customers(pool, generation.model_version, customers)
        revised = sorted(changed & known)
    newcomers = await purchase_histories(pool, unknown + revised)
    scored_unknown = sum(c in newcomers for c in unknown)
    for customer in revised:  # every line of theirs cancelled: an empty history
        newcomers.setdefault(customer, (regions[customer], []))
    products = [p for p in model.item_ids if shard_of(p, generation.shards) == shard]
    filters = await current_filters(pool, regions, settings.rules_extra_candidates)
    users, similar = await asyncio.to_thread(
        _score, model, customers, newcomers, products, settings, filters
    )
    tallied = await asyncio.to_thread(aggregates.tally, regions, users)
    return Slice(users, similar, scored_unknown, tallied)


async def run_shard(
    pool: asyncpg.Pool,
    settings: Settings,
    task: InferShard,
    models: ModelCache,
) -> bool:
    """Write one shard of a building generation; True when it was written (False: already
    done, or the generation is no longer building). The worker writing the last shard makes
    the generation current and then drops old generations."""
    started = time.perf_counter()
    generation = await cache_generations.get(pool, task.generation)
    if generation is None or generation.state != "building":
        return False
    if task.shard in await cache_generations.done_shards(pool, task.generation):
        return False
    piece = await score_slice(pool, settings, generation, task.shard, models)
    if settings.infer_shard_pause_seconds > 0:
        log.info("infer_shard_pausing", generation=task.generation, shard=task.shard)
        await asyncio.sleep(settings.infer_shard_pause_seconds)
    async with pool.acquire() as conn, conn.transaction():
        if not await cache_generations.claim_shard(conn, task.generation, task.shard):
            return False
        await cache.write_slice(
            conn,
            task.generation,
            piece.users,
            piece.similar,
            updated_at=datetime.now(UTC).replace(tzinfo=None),
        )
        await aggregates.write_partials(conn, task.generation, task.shard, piece.regions)
        completed = await generations.complete_shard(
            conn,
            task.generation,
            task.shard,
            WORKER_NAME,
            ShardCounts(
                len(piece.users),
                piece.unknown,
                len(piece.similar),
                dict(piece.regions.active),
            ),
            round(time.perf_counter() - started, 3),
        )
    log.info(
        "cache_shard_done",
        generation=task.generation,
        shard=task.shard,
        users=len(piece.users),
        products=len(piece.similar),
        completed=completed,
    )
    if completed:
        await generations.clean(pool, settings.cache_keep_generations)
    return True
