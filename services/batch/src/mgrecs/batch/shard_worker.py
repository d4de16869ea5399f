"""Consumes `infer-shards` (group `mgrecs-batch-shards`): every batch worker takes shards of
the running infer, whoever published them.

A task is acknowledged only after the shard is written (or found done), so a worker killed
mid-shard leaves the task to be redelivered, to it after a restart or to another worker once
the group rebalances. While the database is unreachable the worker waits and runs the shard
again (writing a shard twice changes nothing); a shard that raises anything else fails its
generation (the previous one keeps serving) instead of being retried forever; a record that
is not a valid task, whatever the reason, goes to `infer-shards.dlq` with the reason.
"""

import asyncpg
from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage

from mgrecs.batch import generations
from mgrecs.batch.metrics import SHARDS
from mgrecs.batch.shards import ModelCache, run_shard
from mgrecs.common import channels, topics
from mgrecs.common.consume import Stopping, acknowledge_after, make_broker
from mgrecs.common.db import DATABASE_UNREACHABLE
from mgrecs.common.logging import get_logger
from mgrecs.common.records import read_message, send_dead_letter
from mgrecs.common.schemas import InferShard
from mgrecs.common.settings import Settings

MAX_SHARD_MS = 6 * 3600 * 1000
"""How long one shard may keep the consumer from polling before the group evicts it."""
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
"""Seconds between runs of a shard while the database is unreachable (doubling to the max)."""

log = get_logger(__name__)


class ShardWorker:
    """Runs shard tasks with the batch worker's pool (set before `broker` starts) and stop.

    It has a broker of its own, which the batch worker starts with its own, side by side:
    each consumer joins its group meanwhile (a broker starts its subscribers one by one)."""

    def __init__(self, settings: Settings, stopping: Stopping) -> None:
        self.settings = settings
        self.stopping = stopping
        self.pool: asyncpg.Pool | None = None
        self.models = ModelCache(settings)
        self.broker = make_broker(settings, graceful_timeout=MAX_SHARD_MS / 1000)
        self.subscriber = channels.subscribe(
            self.broker,
            settings,
            channels.BATCH_SHARDS,
            self._on_task,
            max_poll_interval_ms=MAX_SHARD_MS,
        )
        self.dlq_topic = topics.topic(channels.BATCH_SHARDS.dlq, settings)
        self._dead_letters = channels.dead_letters(self.broker, settings, channels.BATCH_SHARDS)

    async def _on_task(self, body: bytes, message: KafkaMessage) -> None:
        """Acknowledge the task once it is done; not when stopped first (it is read again)
        nor when handling it failed (that stops the worker)."""
        record: ConsumerRecord[bytes, bytes] = message.raw_message
        await acknowledge_after(message, self.stopping, lambda: self._handle(record))

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Run the shard task in `record`; False when stopped before it could be done."""
        assert self.pool is not None
        task = read_message(record, InferShard)
        if isinstance(task, str):
            log.warning("shard_task_invalid", offset=record.offset, reason=task)
            await send_dead_letter(self._dead_letters.publish, self.dlq_topic, record, task)
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
            if await self.stopping.pause(delay):
                return False
            delay = min(delay * 2, BACKOFF_MAX)
        SHARDS.labels("written" if written else "skipped").inc()
        return True
