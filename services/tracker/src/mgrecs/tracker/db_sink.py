"""The PostgreSQL sink: every valid order lands in customers/products/orders/order_items.

A message that cannot be read as a valid order, whatever the reason, goes to `orders.dlq` with
the reason and its bytes. A database that is down or blips makes the
sink retry the same batch (nothing committed, nothing dead-lettered), so nothing is lost, and
the retry gets new connections: the process waits out a database restart instead of exiting.
"""

from abc import abstractmethod
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import asyncpg
from pydantic import BaseModel

from mgrecs.common import channels
from mgrecs.common.correlation import message_id
from mgrecs.common.db import TRANSIENT_DB_ERRORS, create_pool
from mgrecs.common.records import read_message
from mgrecs.common.schemas import OrderEvent
from mgrecs.store.health import database_check
from mgrecs.store.orders import write_orders
from mgrecs.tracker.metrics import DEAD_LETTERED, WRITTEN
from mgrecs.tracker.worker import ConsumerWorker, Record

M = TypeVar("M", bound=BaseModel)

SINK_POOL_SIZE = 2
"""Connections to PostgreSQL per sink consumer: its batches are written one after the other,
each on one connection; the second serves a chore beside them (the served sink's
retention). A pool opens no more than are used at once, but PostgreSQL's `max_connections`
must hold every consumer's maximum (docs/operations.md, Scale): asyncpg's default, 10,
asked for eight that are never used, per consumer."""

REJECTED_BY_DB = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""Deterministic: retrying the same order would fail forever (e.g. a constraint the
schema does not know)."""


@dataclass
class Parsed(Generic[M]):
    """A batch's records parsed: the valid messages, and the others with the reason."""

    valid: list[tuple[Record, M]] = field(default_factory=list)
    invalid: list[tuple[Record, str]] = field(default_factory=list)


class PostgresSink(ConsumerWorker[Parsed[M]], Generic[M]):
    """A sink of `message` messages into PostgreSQL: valid ones written by `write` (in one
    statement or transaction per batch, idempotently), the others dead-lettered to `dlq`
    with the reason. Its pool survives restarts of the database."""

    message: type[M]

    @abstractmethod
    async def write(self, messages: list[M]) -> None:
        """Make `messages` durable; writing one twice must change nothing."""

    async def ready(self) -> str:
        """Also the database: orders cannot be made durable without it."""
        broker = await super().ready()
        return broker if broker != "ok" else await database_check(self.settings.database_url)()

    async def open(self, stack: AsyncExitStack) -> None:
        self._pool: asyncpg.Pool = await self.retrying(
            lambda: create_pool(self.settings.database_url, max_size=SINK_POOL_SIZE),
            TRANSIENT_DB_ERRORS,
            "connect",
        )
        stack.push_async_callback(self._pool.close)

    def prepare(self, records: list[Record]) -> "Parsed[M]":
        parsed = Parsed[M]()
        for record in records:
            message = read_message(record, self.message)
            if isinstance(message, str):
                parsed.invalid.append((record, message))
            else:
                parsed.valid.append((record, message))
        return parsed

    async def handle(self, batch: "Parsed[M]") -> None:
        for record, reason in batch.invalid:
            await self._dead_letter(record, reason)
        valid = batch.valid
        if valid:
            await self.retrying(lambda: self._write_fresh(valid), TRANSIENT_DB_ERRORS, "write")
            WRITTEN.labels(self.sink).inc(len(valid))

    async def _write_fresh(self, valid: list[tuple[Record, M]]) -> None:
        """`_write`; when it fails, the next try opens new connections (a restarted server
        leaves the pooled ones dead, or stuck waiting for the end of its shutdown notice)."""
        try:
            await self._write(valid)
        except TRANSIENT_DB_ERRORS:
            await self._pool.expire_connections()
            raise

    async def _write(self, valid: list[tuple[Record, M]]) -> None:
        """One write for the batch; if the database rejects it, find which messages."""
        try:
            await self.write([message for _, message in valid])
        except REJECTED_BY_DB:
            for record, message in valid:
                try:
                    await self.write([message])
                except REJECTED_BY_DB as exc:
                    await self._dead_letter(record, f"rejected by the database: {exc}")

    async def _dead_letter(self, record: Record, reason: str) -> None:
        self.log.warning(
            "dead_letter",
            message_id=message_id(record),
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
        await self.dead_letter(record, reason)
        DEAD_LETTERED.labels(self.sink).inc()


class DbSink(PostgresSink[OrderEvent]):
    """Consumer group `mgrecs-tracker-db`: orders into PostgreSQL, poison to `orders.dlq`."""

    sink = "db"
    channel = channels.TRACKER_DB
    group = channel.group
    message = OrderEvent

    async def write(self, messages: list[OrderEvent]) -> None:
        await write_orders(self._pool, messages)
