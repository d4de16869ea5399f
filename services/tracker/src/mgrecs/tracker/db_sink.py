"""The PostgreSQL sink: every valid order lands in customers/products/orders/order_items.

Invalid messages go to `orders.dlq` with the reason. A database that is down or blips makes the
sink retry the same batch (nothing committed, nothing dead-lettered), so nothing is lost, and
the retry gets new connections: the process waits out a database restart instead of exiting.
"""

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from mgrecs.common import topics
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import make_producer, send_dead_letter
from mgrecs.common.schemas import OrderEvent
from mgrecs.tracker.metrics import DEAD_LETTERED, WRITTEN
from mgrecs.tracker.parsing import dead_letter, parse_order
from mgrecs.tracker.store import write_orders
from mgrecs.tracker.worker import ConsumerWorker, Record

TRANSIENT_DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""Worth retrying: connection loss, restarts, deadlocks, timeouts. InternalClientError is what a
pooled connection raises when the server shut down while it sat idle ("another operation is in
progress")."""
REJECTED_BY_DB = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""Deterministic: retrying the same order would fail forever (e.g. a constraint the
schema does not know)."""


class PostgresSink(ConsumerWorker):
    """What the sinks writing PostgreSQL share: a pool that survives restarts of the
    database, and a producer for the dead letters of `dlq`."""

    dlq: str

    async def open(self, stack: AsyncExitStack) -> None:
        self._pool: asyncpg.Pool = await self.retrying(
            lambda: create_pool(self.settings.database_url), TRANSIENT_DB_ERRORS, "connect"
        )
        stack.push_async_callback(self._pool.close)
        self._producer: AIOKafkaProducer = make_producer(self.settings)
        await self._producer.start()
        stack.push_async_callback(self._producer.stop)
        self._dlq = topics.topic(self.dlq, self.settings)

    async def durably(self, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` until it succeeds; after a failure, the next try opens new connections
        (a restarted server leaves the pooled ones dead, or stuck waiting for the end of its
        shutdown notice)."""

        async def fresh() -> None:
            try:
                await write()
            except TRANSIENT_DB_ERRORS:
                await self._pool.expire_connections()
                raise

        await self.retrying(fresh, TRANSIENT_DB_ERRORS, "write")

    async def _dead_letter(self, record: Record, reason: str) -> None:
        self.log.warning(
            "dead_letter", partition=record.partition, offset=record.offset, reason=reason
        )
        letter = dead_letter(record, reason)
        await self.retrying(
            lambda: send_dead_letter(self._producer, self._dlq, letter), (KafkaError,), "dlq"
        )
        DEAD_LETTERED.labels(self.sink).inc()


class DbSink(PostgresSink):
    """Consumer group `mgrecs-tracker-db`: orders into PostgreSQL, poison to the DLQ."""

    sink = "db"
    group = "mgrecs-tracker-db"
    dlq = topics.ORDERS_DLQ

    async def handle(self, records: list[Record]) -> None:
        valid: list[tuple[Record, OrderEvent]] = []
        for record in records:
            parsed = parse_order(record)
            if isinstance(parsed, OrderEvent):
                valid.append((record, parsed))
            else:
                await self._dead_letter(record, parsed)
        if valid:
            await self.durably(lambda: self._write(valid))
            WRITTEN.labels(self.sink).inc(len(valid))

    async def _write(self, valid: list[tuple[Record, OrderEvent]]) -> None:
        """One transaction for the batch; if the database rejects it, find which orders."""
        try:
            await write_orders(self._pool, [order for _, order in valid])
        except REJECTED_BY_DB:
            for record, order in valid:
                try:
                    await write_orders(self._pool, [order])
                except REJECTED_BY_DB as exc:
                    await self._dead_letter(record, f"rejected by the database: {exc}")
