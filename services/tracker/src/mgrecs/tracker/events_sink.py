"""The PutEvents sink: forwards every order line to the engine (or AWS Personalize).

Invalid messages are skipped here (the db sink dead-letters them). Calls for different users
run concurrently; failed calls are retried with backoff; offsets are committed only once
every call of the batch succeeded.
"""

import asyncio
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from mgrecs.common.personalize import events_client
from mgrecs.common.schemas import OrderEvent
from mgrecs.tracker.events import put_events_calls
from mgrecs.tracker.metrics import FORWARDED, REJECTED, SKIPPED
from mgrecs.tracker.parsing import parse_order
from mgrecs.tracker.worker import ConsumerWorker, Record

TRANSIENT_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)
CALLS_IN_FLIGHT = 10
"""PutEvents calls of one batch sent concurrently (different users): a batch waits for the
target's latency a tenth as often. Ten is botocore's connection pool."""
REJECTED_CODES = {"InvalidInputException", "ValidationException"}
"""The target refuses these events for good: retrying would block the partition forever."""


class EventsSink(ConsumerWorker):
    """Consumer group `mgrecs-tracker-events`: order lines to PutEvents."""

    sink = "events"
    group = "mgrecs-tracker-events"

    async def open(self, stack: AsyncExitStack) -> None:
        self._client: Any = await stack.enter_async_context(events_client(self.settings))

    async def handle(self, records: list[Record]) -> None:
        orders: list[OrderEvent] = []
        for record in records:
            parsed = parse_order(record)
            if isinstance(parsed, OrderEvent):
                orders.append(parsed)
            else:
                SKIPPED.labels(self.sink).inc()
                self.log.info(
                    "skipped_invalid",
                    partition=record.partition,
                    offset=record.offset,
                    reason=parsed,
                )
        by_user: dict[str, list[dict[str, Any]]] = {}
        for call in put_events_calls(orders, self.settings.tracking_id):
            by_user.setdefault(call["userId"], []).append(call)
        slots = asyncio.Semaphore(CALLS_IN_FLIGHT)
        tasks = [asyncio.create_task(self._put_in_order(c, slots)) for c in by_user.values()]
        try:
            await asyncio.gather(*tasks)
        finally:  # one failed (or the sink stops): leave no call running behind the batch
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _put_in_order(self, calls: list[dict[str, Any]], slots: asyncio.Semaphore) -> None:
        """One user's calls one after another (their events keep their order)."""
        async with slots:
            for call in calls:
                await self.retrying(partial(self._put, call), TRANSIENT_ERRORS, "put_events")

    async def _put(self, call: dict[str, Any]) -> None:
        try:
            await self._client.put_events(**call)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in REJECTED_CODES:
                raise
            self.log.error("events_rejected", user_id=call["userId"], error=str(exc))
            REJECTED.labels(self.sink).inc(len(call["eventList"]))
            return
        FORWARDED.labels(self.sink).inc(len(call["eventList"]))
