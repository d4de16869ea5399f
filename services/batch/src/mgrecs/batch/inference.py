"""The infer job: the active model scores every active customer and every product into a new
cache generation, which the API (and the old pipeline's readers) serve once it is whole.

The run is split into `infer_shards` shards. Given a `dispatch`, the shard tasks go to the
`infer-shards` topic, where any batch worker takes them, and the job waits for the
generation; without one (a job called directly) it writes the shards itself, one by one.
A redelivered tick resumes the generation it started instead of starting another.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from mgrecs.batch import generations
from mgrecs.batch.drift import check_drift_logged
from mgrecs.batch.metrics import JOB_SECONDS
from mgrecs.batch.shards import ModelCache, run_shard
from mgrecs.batch.steps import Steps
from mgrecs.common.logging import get_logger
from mgrecs.common.schemas import InferShard
from mgrecs.common.settings import Settings
from mgrecs.common.usage import BATCH_INPUTS, BATCH_JOBS, METER
from mgrecs.store import cache_generations
from mgrecs.store.cache_generations import Generation
from mgrecs.store.model_versions import active_model

log = get_logger(__name__)

Dispatch = Callable[[list[InferShard]], Awaitable[None]]
"""Publishes shard tasks for the batch workers."""


@dataclass(frozen=True)
class InferenceSummary:
    version: str
    generation: int
    shards: int
    users: int
    users_unknown_to_model: int
    products: int
    user_rows_deleted: int
    """Customers the previous generation had and this one has not."""
    product_rows_deleted: int
    seconds: float

    @classmethod
    def of(cls, built: Generation, version: str, seconds: float) -> "InferenceSummary":
        """The summary of a finished generation."""
        return cls(
            version=version,
            generation=built.generation,
            shards=built.shards,
            users=built.users,
            users_unknown_to_model=built.users_unknown,
            products=built.products,
            user_rows_deleted=built.users_dropped,
            product_rows_deleted=built.products_dropped,
            seconds=round(seconds, 3),
        )


async def _start(pool: asyncpg.Pool, settings: Settings, tick_id: str | None) -> Generation:
    """The tick's generation still building, or a new one for the active model (raises
    NoActiveModel when none). Generations abandoned for too long are failed first."""
    if tick_id is not None:
        resumed = await cache_generations.building_for_tick(pool, tick_id)
        if resumed is not None:
            log.info("cache_generation_resumed", generation=resumed.generation, tick_id=tick_id)
            return resumed
    version = await active_model(pool)
    await generations.fail_stale(pool, timedelta(hours=settings.infer_timeout_hours))
    return await generations.create(
        pool,
        tick_id=tick_id,
        model_version=version.version,
        artifact_uri=version.artifact_uri,
        shards=settings.infer_shards,
        active_since=datetime.now(UTC) - timedelta(days=settings.active_days),
    )


async def _write_locally(
    pool: asyncpg.Pool, settings: Settings, tasks: list[InferShard], generation: int
) -> None:
    models = ModelCache(settings)
    for task in tasks:
        try:
            await run_shard(pool, settings, task, models)
        except Exception as exc:
            await generations.fail(pool, generation, f"shard {task.shard}: {exc}")
            raise


async def infer(
    pool: asyncpg.Pool,
    settings: Settings,
    steps: Steps | None = None,
    *,
    tick_id: str | None = None,
    dispatch: Dispatch | None = None,
) -> InferenceSummary:
    """Build a cache generation and wait until it is current; steps start (generation and
    shard tasks), shards (until the last one is written and the generation flipped) and
    drift (model health, measured once the new cache serves)."""
    steps = steps or Steps(pool)
    started = time.perf_counter()
    with JOB_SECONDS.labels("infer").time():
        async with steps.step("start"):
            generation = await _start(pool, settings, tick_id)
            done = await cache_generations.done_shards(pool, generation.generation)
            tasks = [
                InferShard(generation=generation.generation, shard=shard, shards=generation.shards)
                for shard in range(generation.shards)
                if shard not in done
            ]
            if dispatch is not None:
                await dispatch(tasks)
        async with steps.step("shards"):
            if dispatch is None:
                await _write_locally(pool, settings, tasks, generation.generation)
            timeout = timedelta(hours=settings.infer_timeout_hours)
            left = generation.created_at + timeout - datetime.now(UTC)
            built = await generations.wait(
                pool, generation.generation, time.monotonic() + left.total_seconds()
            )
        async with steps.step("drift"):
            await check_drift_logged(pool, settings)
    summary = InferenceSummary.of(built, built.model_version or "", time.perf_counter() - started)
    log.info("infer_done", state=built.state, **asdict(summary))
    # What AWS would bill: a job per recipe, a batch recommendation per user and product.
    METER.add("batch", BATCH_JOBS, 2)
    METER.add("batch", BATCH_INPUTS, built.users + built.products)
    return summary
