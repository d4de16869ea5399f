"""The batch worker: consumes schedule ticks and runs the job each one asks for.

A tick is recorded in `processed_ticks`; a tick already finished is skipped, so a
redelivered tick never runs twice. A retrain or refresh tick that finds another one running
(on any instance) is recorded as skipped, not queued. The offset is committed only once the
job (and its record) is durable. A failing job is recorded with its error and the worker
moves on: the next tick retries, instead of the same tick crashing the worker in a loop. A
record that is not a valid tick, whatever the reason, goes to `schedule-ticks.dlq`; a
database that is unreachable pauses the worker, which retries the same tick.
An infer tick publishes its shard tasks and waits until every shard is written (by this
worker or others).
"""

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic_core import to_jsonable_python
from structlog.contextvars import bound_contextvars

from mgrecs.batch.aws import inference as aws_inference
from mgrecs.batch.aws import training as aws_training
from mgrecs.batch.inference import infer
from mgrecs.batch.metrics import DEAD_LETTERS, TICKS
from mgrecs.batch.shard_worker import ShardWorker
from mgrecs.batch.steps import Steps
from mgrecs.batch.training import refresh, retrain
from mgrecs.common import topics
from mgrecs.common.db import TRANSIENT_DB_ERRORS, create_pool
from mgrecs.common.kafka import ensure_topics, make_consumer, make_producer, send_dead_letter
from mgrecs.common.logging import get_logger
from mgrecs.common.records import dead_letter, read_message
from mgrecs.common.schemas import InferShard, ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.store import jobs
from mgrecs.store.jobs import AnotherRetrainRunning

"""The consumer group, after the topic prefix (tenants sharing a broker stay apart)."""
MAX_JOB_MS = 6 * 3600 * 1000
"""How long a job may keep the consumer from polling before the group evicts it."""
BACKOFF_START = 0.2
BACKOFF_MAX = 30.0
"""Seconds between tries while the database is unreachable (doubling up to the max)."""

log = get_logger(__name__)


class BatchWorker:
    """Consumes `schedule-ticks` (group `mgrecs-batch`) until `stop()` is called."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topics.topic(topics.SCHEDULE_TICKS, settings)
        self.dlq_topic = topics.topic(topics.SCHEDULE_TICKS_DLQ, settings)
        self.shards_topic = topics.topic(topics.INFER_SHARDS, settings)
        self.group = topics.group_id(topics.BATCH_GROUP, settings)
        self._stopping = asyncio.Event()
        self._shard_worker: ShardWorker | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def ready(self) -> str:
        """`ok` once the tick consumer runs and the broker answers it (for `/readyz`)."""
        if self._consumer is None:
            return "not consuming yet"
        await self._consumer.topics()  # a metadata request to the cluster
        return "ok"

    async def run(self) -> None:
        """Both consumers until `stop()`; if one of them crashes, the other stops too."""
        await ensure_topics(self.settings)
        pool = await create_pool(self.settings.database_url)
        self._shard_worker = ShardWorker(self.settings, pool)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._consume_ticks(pool))
                group.create_task(self._shard_worker.run())
        finally:
            await pool.close()

    async def _consume_ticks(self, pool: asyncpg.Pool) -> None:
        producer = make_producer(self.settings)
        consumer = make_consumer(
            self.settings,
            self.topic,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=MAX_JOB_MS,
        )
        try:
            await producer.start()
            await consumer.start()
            self._consumer = consumer
            log.info("batch_worker_started", topic=self.topic, group=self.group)
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=1)
                for partition, messages in batches.items():
                    for message in messages:
                        if not await self._until_handled(pool, producer, message):
                            return  # stopped while the database was down: read it again
                        await consumer.commit({partition: message.offset + 1})
        finally:
            self._consumer = None
            await consumer.stop()
            await producer.stop()
            if self._shard_worker is not None:
                self._shard_worker.stop()
            log.info("batch_worker_stopped")

    async def stop(self) -> None:
        """Finish the job and the shard in progress (if any), then leave the groups and close."""
        self._stopping.set()
        if self._shard_worker is not None:
            self._shard_worker.stop()

    async def _dispatch(self, producer: AIOKafkaProducer, tasks: list[InferShard]) -> None:
        """Publish an infer run's shard tasks, keyed `generation:shard`, shard n on partition
        n mod the partitions: workers share the partitions, so they share the shards evenly
        (hashing the keys could give one worker most of them)."""
        partitions = sorted(await producer.partitions_for(self.shards_topic))
        sent = [
            await producer.send(
                self.shards_topic,
                task.model_dump_json().encode(),
                key=task.key,
                partition=partitions[task.shard % len(partitions)],
            )
            for task in tasks
        ]
        await asyncio.gather(*sent)

    def _job(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, tick: ScheduleTick
    ) -> Callable[[], Awaitable[Any]]:
        steps = Steps(pool, tick.tick_id, tick.kind)
        dispatch = functools.partial(self._dispatch, producer)
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

    async def _until_handled(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, message: ConsumerRecord[Any, Any]
    ) -> bool:
        """`_handle` the message, pausing and retrying while the database is unreachable (the
        tick is not committed meanwhile); False when asked to stop first."""
        delay = BACKOFF_START
        while True:
            try:
                await self._handle(pool, producer, message)
                return True
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("tick_retrying", offset=message.offset, error=repr(exc), delay=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return False
            delay = min(delay * 2, BACKOFF_MAX)

    async def _handle(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, message: ConsumerRecord[Any, Any]
    ) -> None:
        tick = read_message(message, ScheduleTick)
        if isinstance(tick, str):
            await self._dead_letter(producer, message, tick)
            return
        with bound_contextvars(tick_id=tick.tick_id, kind=tick.kind):
            await self._run_tick(pool, producer, tick)

    async def _run_tick(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, tick: ScheduleTick
    ) -> None:
        """Run the tick's job once, recording its outcome (logs carry its tick id)."""
        if await jobs.is_finished(pool, tick.tick_id):
            log.info("tick_already_done", tick_id=tick.tick_id, kind=tick.kind)
            TICKS.labels(tick.kind, "duplicate").inc()
            return
        await jobs.start(pool, tick)
        log.info("tick_started", tick_id=tick.tick_id, kind=tick.kind)
        started = time.perf_counter()
        try:
            result = await self._job(pool, producer, tick)()
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

    async def _dead_letter(
        self, producer: AIOKafkaProducer, message: ConsumerRecord[Any, Any], reason: str
    ) -> None:
        log.warning("tick_dead_lettered", offset=message.offset, reason=reason)
        await send_dead_letter(producer, self.dlq_topic, dead_letter(message, reason))
        DEAD_LETTERS.inc()
