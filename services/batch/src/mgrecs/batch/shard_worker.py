"""Consumes `infer-shards` (group `mgrecs-batch-shards`): every batch worker takes shards of
the running infer, whoever published them.

The offset is committed only after the shard is written (or found done), so a worker killed
mid-shard leaves the task to be redelivered, to it after a restart or to another worker once
the group rebalances. While the database is unreachable the worker waits and runs the shard
again (writing a shard twice changes nothing); a shard that raises anything else fails its
generation (the previous one keeps serving) instead of being retried forever; a record that
is not a valid task, whatever the reason, goes to `infer-shards.dlq` with the reason.
"""

import asyncio
import contextlib
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord

from mgrecs.batch import generations
from mgrecs.batch.metrics import SHARDS
from mgrecs.batch.shards import ModelCache, run_shard
from mgrecs.common import topics
from mgrecs.common.db import DATABASE_UNREACHABLE
from mgrecs.common.kafka import make_consumer, make_producer, send_dead_letter
from mgrecs.common.logging import get_logger
from mgrecs.common.records import dead_letter, read_message
from mgrecs.common.schemas import InferShard
from mgrecs.common.settings import Settings

MAX_SHARD_MS = 6 * 3600 * 1000
"""How long one shard may keep the consumer from polling before the group evicts it."""
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
"""Seconds between runs of a shard while the database is unreachable (doubling to the max)."""

log = get_logger(__name__)


class ShardWorker:
    """Runs shard tasks until `stop()`; shares the batch worker's pool."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.topic = topics.topic(topics.INFER_SHARDS, settings)
        self.dlq_topic = topics.topic(topics.INFER_SHARDS_DLQ, settings)
        self.group = topics.group_id(topics.BATCH_SHARDS_GROUP, settings)
        self.models = ModelCache()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        consumer = make_consumer(
            self.settings,
            self.topic,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=MAX_SHARD_MS,
        )
        producer = make_producer(self.settings)
        await producer.start()
        try:
            await consumer.start()
            log.info("shard_worker_started", topic=self.topic, group=self.group)
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=1)
                for partition, messages in batches.items():
                    for message in messages:
                        if not await self._handle(producer, message):
                            return  # stopped while waiting for the database: not committed
                        await consumer.commit({partition: message.offset + 1})
        finally:
            await consumer.stop()
            await producer.stop()

    def stop(self) -> None:
        """Finish the shard in progress (if any), then leave the group."""
        self._stopping.set()

    async def _handle(self, producer: AIOKafkaProducer, message: ConsumerRecord[Any, Any]) -> bool:
        """Run the shard task in `message`; False when stopped before it could be done."""
        task = read_message(message, InferShard)
        if isinstance(task, str):
            log.warning("shard_task_invalid", offset=message.offset, reason=task)
            await send_dead_letter(producer, self.dlq_topic, dead_letter(message, task))
            SHARDS.labels("invalid").inc()
            return True
        delay = BACKOFF_START
        while True:
            try:
                written = await run_shard(self.pool, self.settings, task, self.models)
                break
            except DATABASE_UNREACHABLE as exc:
                log.warning("shard_waiting_for_database", shard=task.shard, error=repr(exc))
                await self.pool.expire_connections()
            except Exception as exc:
                log.exception("shard_failed", generation=task.generation, shard=task.shard)
                await generations.fail(self.pool, task.generation, f"shard {task.shard}: {exc}")
                SHARDS.labels("failed").inc()
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return False
            delay = min(delay * 2, BACKOFF_MAX)
        SHARDS.labels("written" if written else "skipped").inc()
        return True
