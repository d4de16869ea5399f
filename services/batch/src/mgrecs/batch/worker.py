"""The batch worker: consumes schedule ticks and runs the job each one asks for.

A tick is recorded in `processed_ticks`; a tick already finished is skipped, so a
redelivered tick never runs twice. A retrain or refresh tick that finds another one running
(on any instance) is recorded as skipped, not queued. The tick is acknowledged (its offset
committed) only once the job (and its record) is durable. A failing job is recorded with its
error and the worker moves on: the next tick retries, instead of the same tick crashing the
worker in a loop. A record that is not a valid tick, whatever the reason, goes to
`schedule-ticks.dlq`; a database that is unreachable pauses the worker, which retries the
same tick.
An infer tick publishes its shard tasks and waits until every shard is written (by this
worker or others). An online tick scores the active version's online accuracy (in either
batch mode: it reads only PostgreSQL).
"""

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage
from pydantic_core import to_jsonable_python
from structlog.contextvars import bound_contextvars

from mgrecs.batch.aws import inference as aws_inference
from mgrecs.batch.aws import training as aws_training
from mgrecs.batch.inference import infer
from mgrecs.batch.metrics import DEAD_LETTERS, TICKS
from mgrecs.batch.online import run_online
from mgrecs.batch.shard_worker import ShardWorker
from mgrecs.batch.steps import Steps
from mgrecs.batch.training import refresh, retrain
from mgrecs.common import channels, topics
from mgrecs.common.consume import Stopping, acknowledge_after, consuming, make_broker
from mgrecs.common.db import TRANSIENT_DB_ERRORS, create_pool
from mgrecs.common.kafka import ensure_topics, partitions_of
from mgrecs.common.logging import get_logger
from mgrecs.common.records import read_message, send_dead_letter
from mgrecs.common.schemas import InferShard, ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.store import jobs
from mgrecs.store.jobs import AnotherRetrainRunning

MAX_JOB_MS = 6 * 3600 * 1000
"""How long a job may keep the consumer from polling before the group evicts it (and how
long a stop waits for the job in progress)."""
BATCH_POOL_SIZE = 10
"""Connections to PostgreSQL per batch worker, shared by the job and the infer shard in
progress (a retrain reads its inputs at once). PostgreSQL's `max_connections` holds every
worker's (docs/operations.md, Scale)."""

BACKOFF_START = 0.2
BACKOFF_MAX = 30.0
"""Seconds between tries while the database is unreachable (doubling up to the max)."""

log = get_logger(__name__)


class BatchWorker:
    """Consumes `schedule-ticks` (group `mgrecs-batch`) and `infer-shards` until `stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = Stopping()
        self.broker = make_broker(settings, graceful_timeout=MAX_JOB_MS / 1000)
        self._ticks = channels.subscribe(
            self.broker,
            settings,
            channels.BATCH_TICKS,
            self._on_tick,
            max_poll_interval_ms=MAX_JOB_MS,
        )
        self.dlq_topic = topics.topic(channels.BATCH_TICKS.dlq, settings)
        self._dead_letters = channels.dead_letters(self.broker, settings, channels.BATCH_TICKS)
        self.shards_topic = topics.topic(topics.INFER_SHARDS, settings)
        self._shard_tasks = channels.publisher(self.broker, settings, channels.INFER_SHARDS)
        self._shards = ShardWorker(settings, self.stopping)
        self._pool: asyncpg.Pool | None = None

    async def ready(self) -> str:
        """`ok` once the tick consumer runs and the broker answers it (for `/readyz`)."""
        return await consuming(self._ticks)

    async def run(self) -> None:
        """Both subscribers until `stop()`; if one of them fails, the other stops too and the
        error ends the run."""
        await ensure_topics(self.settings)
        self._pool = await create_pool(self.settings.database_url, max_size=BATCH_POOL_SIZE)
        self._shards.pool = self._pool
        brokers = (self.broker, self._shards.broker)
        try:
            await asyncio.gather(*(broker.start() for broker in brokers))
            log.info("batch_worker_started", topic=self._ticks.topic_names)
            await self.stopping.wait()
        finally:
            # each lets its message in progress (the job, the shard) finish
            await asyncio.gather(*(broker.stop() for broker in brokers))
            await self._pool.close()
            log.info("batch_worker_stopped")
        if self.stopping.error is not None:
            raise self.stopping.error

    async def stop(self) -> None:
        """Finish the job and the shard in progress (if any), then leave the groups and close."""
        self.stopping.stop()

    async def _on_tick(self, body: bytes, message: KafkaMessage) -> None:
        """Acknowledge the tick once its job is durable; not when stopped first (it is read
        again) nor when handling it failed (that stops the worker)."""
        record: ConsumerRecord[bytes, bytes] = message.raw_message
        await acknowledge_after(message, self.stopping, lambda: self._until_handled(record))

    async def _dispatch(self, tasks: list[InferShard]) -> None:
        """Publish an infer run's shard tasks, keyed `generation:shard`, shard n on partition
        n mod the partitions: workers share the partitions, so they share the shards evenly
        (hashing the keys could give one worker most of them)."""
        partitions = await partitions_of(self.settings, self.shards_topic)
        sent = [
            await self._shard_tasks.publish(
                task.model_dump_json().encode(),
                key=task.key,
                partition=partitions[task.shard % len(partitions)],
                no_confirm=True,
            )
            for task in tasks
        ]
        await asyncio.gather(*sent)

    def _job(self, pool: asyncpg.Pool, tick: ScheduleTick) -> Callable[[], Awaitable[Any]]:
        steps = Steps(pool, tick.tick_id, tick.kind)
        dispatch = self._dispatch
        if tick.kind == "online":
            return functools.partial(run_online, pool, self.settings, steps)
        if self.settings.batch_mode == "aws":
            return self._aws_job(pool, tick, steps)
        if tick.kind == "retrain":
            return functools.partial(retrain, pool, self.settings, steps)
        if tick.kind == "refresh":
            return functools.partial(refresh, pool, self.settings, steps, dispatch=dispatch)
        return functools.partial(
            infer, pool, self.settings, steps, tick_id=tick.tick_id, dispatch=dispatch
        )

    def _aws_job(
        self, pool: asyncpg.Pool, tick: ScheduleTick, steps: Steps
    ) -> Callable[[], Awaitable[Any]]:
        """AWS mode (docs/aws.md): the jobs drive AWS Personalize."""
        if tick.kind == "retrain":
            return functools.partial(aws_training.retrain, pool, self.settings, steps)
        if tick.kind == "refresh":
            return functools.partial(aws_training.refresh, pool, self.settings, steps)
        return functools.partial(
            aws_inference.infer, pool, self.settings, steps, tick_id=tick.tick_id
        )

    async def _until_handled(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """`_handle` the record, pausing and retrying while the database is unreachable (the
        tick is not acknowledged meanwhile); False when asked to stop first."""
        assert self._pool is not None
        delay = BACKOFF_START
        while True:
            try:
                await self._handle(self._pool, record)
                return True
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("tick_retrying", offset=record.offset, error=repr(exc), delay=delay)
            if await self.stopping.pause(delay):
                return False
            delay = min(delay * 2, BACKOFF_MAX)

    async def _handle(self, pool: asyncpg.Pool, record: ConsumerRecord[bytes, bytes]) -> None:
        tick = read_message(record, ScheduleTick)
        if isinstance(tick, str):
            log.warning("tick_dead_lettered", offset=record.offset, reason=tick)
            await send_dead_letter(self._dead_letters.publish, self.dlq_topic, record, tick)
            DEAD_LETTERS.inc()
            return
        with bound_contextvars(tick_id=tick.tick_id, kind=tick.kind):
            await self._run_tick(pool, tick)

    async def _run_tick(self, pool: asyncpg.Pool, tick: ScheduleTick) -> None:
        """Run the tick's job once, recording its outcome (logs carry its tick id)."""
        if await jobs.is_finished(pool, tick.tick_id):
            log.info("tick_already_done", tick_id=tick.tick_id, kind=tick.kind)
            TICKS.labels(tick.kind, "duplicate").inc()
            return
        await jobs.start(pool, tick)
        log.info("tick_started", tick_id=tick.tick_id, kind=tick.kind)
        started = time.perf_counter()
        try:
            result = await self._job(pool, tick)()
        except AnotherRetrainRunning as exc:
            detail: dict[str, Any] = {"status": "skipped", "reason": str(exc)}
            outcome = "skipped"
        except Exception as exc:
            log.exception("tick_failed", tick_id=tick.tick_id, kind=tick.kind)
            detail = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            outcome = "failed"
        else:
            detail = {"status": "ok", **to_jsonable_python(asdict(result))}
            outcome = "ok"
        detail["seconds"] = round(time.perf_counter() - started, 3)
        await jobs.finish(pool, tick.tick_id, detail)
        TICKS.labels(tick.kind, outcome).inc()
        log.info("tick_finished", tick_id=tick.tick_id, kind=tick.kind, **detail)
