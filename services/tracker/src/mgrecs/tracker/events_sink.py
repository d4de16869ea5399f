"""The PutEvents sink: forwards every order line to the engine (or AWS Personalize), and
the cancellations to the engine (mgrecs.tracker.events).

Invalid messages are skipped here (the db sink dead-letters them). Calls for different users
run concurrently. Failures trip a circuit breaker (calls wait while it is open, a probe tests
the target). A target that is down or throttling (no connection, timeouts, 429/502/503/504),
or that refuses our credentials (403: a wrong key or secret, a skewed clock; counted in
`mgrecs_tracker_auth_failures_total`, alert EventsAuthFailing), costs the events nothing: they
wait, then the backlog drains once it is fixed. Any other failure (a 500, say)
is the call's: after `events_max_attempts` of them, with backoff, the call goes to
`orders.events.dlq` with the reason and its events, as does a call the target refuses.
Offsets are committed once every call of the batch is settled.

With the self-hosted engine (and `events_bulk`, the default) a batch's calls go in a few bulk
requests (mgrecs.tracker.bulk) under the same rules: an outage or a refused key waits, other
failures spend attempts. A bulk the engine refuses (it records nothing of it) or that runs
out of attempts is sent again as its PutEvents calls, one by one, so only the calls at fault
reach the dead-letter topic, each with its reason.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from mgrecs.common import channels, topics
from mgrecs.common.correlation import message_id
from mgrecs.common.personalize import events_client
from mgrecs.common.records import Unsent, read_message
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.usage import EVENTS, METER, PUT_EVENTS_CALLS
from mgrecs.tracker.breaker import CircuitBreaker
from mgrecs.tracker.bulk import UNKNOWN_OPERATION, Bulk, BulkClient, bulks
from mgrecs.tracker.events import put_events_calls
from mgrecs.tracker.metrics import (
    AUTH_FAILURES,
    DEAD_LETTERED,
    FORWARDED,
    REJECTED,
    RETRIES,
    SKIPPED,
)
from mgrecs.tracker.worker import BACKOFF_MAX, BACKOFF_START, ConsumerWorker, Record, StoppedError

TRANSIENT_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)
CALLS_IN_FLIGHT = 10
"""PutEvents calls of one batch sent concurrently (different users): a batch waits for the
target's latency a tenth as often. Ten is botocore's connection pool."""
REJECTED_CODES = {
    "InvalidInputException",
    "ValidationException",
    "RequestEntityTooLargeException",
    UNKNOWN_OPERATION,
}
"""The target refuses these events for good: retrying would block the partition forever (a
refused bulk's calls are then sent one by one)."""
UNAVAILABLE_STATUS = {429, 502, 503, 504}
UNAVAILABLE_CODES = {"ThrottlingException", "TooManyRequestsException", "ServiceUnavailable"}
AUTH_STATUS = {401, 403}
AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
"""The target refuses our credentials or signature (a wrong key or secret, a skewed clock):
an outage of ours to fix, never the events' fault."""


def _error_code(error: Exception) -> str | None:
    if isinstance(error, ClientError):
        code: str | None = error.response.get("Error", {}).get("Code")
        return code
    return None


def _status(error: ClientError) -> int | None:
    status: int | None = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status


def _auth_failure(error: Exception) -> bool:
    """The target refused who we are (401/403, or an authentication error code)."""
    if not isinstance(error, ClientError):
        return False
    return _status(error) in AUTH_STATUS or _error_code(error) in AUTH_CODES


def _unavailable(error: Exception) -> bool:
    """The target is down, throttling (no connection, a timeout, 429/502/503/504) or refuses
    our credentials: not this call's fault. Other errors (a 500, say) count against the
    call's attempts."""
    if isinstance(error, ClientError):
        return (
            _status(error) in UNAVAILABLE_STATUS
            or _error_code(error) in UNAVAILABLE_CODES
            or _auth_failure(error)
        )
    return not isinstance(error, ParamValidationError)


@dataclass(frozen=True)
class Failed:
    """Why a call (or a bulk) was not taken."""

    reason: str
    refused: bool
    """The target refused it for good (rather than failing it `events_max_attempts` times)."""


@dataclass(frozen=True)
class Batch:
    """A batch's PutEvents calls (each user's in order), and the same calls as bulk
    requests when the bulk path is on (else none)."""

    calls: list[dict[str, Any]]
    bulks: list[Bulk]


def _by_user(calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`calls` grouped by user, each user's in order."""
    by_user: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_user.setdefault(call["userId"], []).append(call)
    return list(by_user.values())


class EventsSink(ConsumerWorker[Batch]):
    """Consumer group `mgrecs-tracker-events`: order lines to PutEvents."""

    sink = "events"
    channel = channels.TRACKER_EVENTS
    group = channel.group

    async def open(self, stack: AsyncExitStack) -> None:
        self._client: Any = await stack.enter_async_context(events_client(self.settings))
        self._bulk: BulkClient | None = None
        if self.settings.personalize_endpoint_url and self.settings.events_bulk:
            session = await stack.enter_async_context(BulkClient.session())
            self._bulk = BulkClient(self.settings, session)
        self._breaker = CircuitBreaker(
            self.sink, self.settings.events_breaker_failures, self.settings.events_breaker_seconds
        )

    async def ready(self) -> str:
        """Also the PutEvents target: not ready while the circuit breaker holds it as down."""
        broker = await super().ready()
        if broker == "ok" and self._breaker.is_open:
            return "PutEvents target down (circuit open)"
        return broker

    def prepare(self, records: list[Record]) -> Batch:
        """The batch's PutEvents calls (grouped by user), and as bulk requests when they go
        to the self-hosted engine's bulk path."""
        orders: list[OrderEvent] = []
        for record in records:
            parsed = read_message(record, OrderEvent)
            if isinstance(parsed, OrderEvent):
                orders.append(parsed)
            else:
                SKIPPED.labels(self.sink).inc()
                self.log.info(
                    "skipped_invalid",
                    message_id=message_id(record),
                    partition=record.partition,
                    offset=record.offset,
                    reason=parsed,
                )
        # AWS (no endpoint URL) cannot take a removal back: it gets the purchases only.
        cancels = bool(self.settings.personalize_endpoint_url)
        calls = put_events_calls(orders, self.settings.tracking_id, cancels)
        return Batch(calls, bulks(calls) if self._bulk is not None else [])

    async def handle(self, batch: Batch) -> None:
        if self._bulk is None:
            await self._per_call(_by_user(batch.calls))
            return
        for bulk in batch.bulks:  # one after another: a user's calls keep their order
            await self._deliver_bulk(self._bulk, bulk)

    async def _deliver_bulk(self, client: BulkClient, bulk: Bulk) -> None:
        """Send `bulk` until taken; refused or out of attempts, its calls one by one."""
        failed = await self._send(lambda: client.send(bulk), bulk.events, len(bulk.calls))
        if failed is None:
            return
        self.log.warning("bulk_sent_per_call", events=bulk.events, reason=failed.reason)
        await self._per_call(_by_user(bulk.calls))

    async def _per_call(self, by_user: list[list[dict[str, Any]]]) -> None:
        """PutEvents calls, different users' concurrently."""
        slots = asyncio.Semaphore(CALLS_IN_FLIGHT)
        tasks = [asyncio.create_task(self._put_in_order(calls, slots)) for calls in by_user]
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
                await self._deliver(call)

    async def _deliver(self, call: dict[str, Any]) -> None:
        """Send one call until it is taken, refused, or out of attempts (then dead-lettered)."""
        events = len(call["eventList"])
        failed = await self._send(lambda: self._client.put_events(**call), events, 1)
        if failed is None:
            return
        if failed.refused:
            REJECTED.labels(self.sink).inc(events)
        await self._dead_letter(call, failed.reason)

    async def _send(
        self, send: Callable[[], Awaitable[Any]], events: int, calls: int
    ) -> Failed | None:
        """Call `send` (`calls` PutEvents calls, `events` events) until the target takes it
        (None), refuses it, or fails it `events_max_attempts` times; while the target is down
        it waits, spending nothing. Taken, its calls and events count for the cost report."""
        attempts, delay = 0, BACKOFF_START
        while True:
            if not await self._breaker.closed(self.stopping):
                raise StoppedError
            try:
                await send()
            except TRANSIENT_ERRORS as exc:
                error: Exception = exc
            else:
                self._breaker.success()
                FORWARDED.labels(self.sink).inc(events)
                METER.add("tracker", PUT_EVENTS_CALLS, calls)
                METER.add("tracker", EVENTS, events)
                return None
            if _error_code(error) in REJECTED_CODES:
                self._breaker.success()  # the target answered: it is up
                return Failed(f"refused by PutEvents: {error}", refused=True)
            RETRIES.labels(self.sink).inc()
            self._breaker.failure()
            if _auth_failure(error):
                AUTH_FAILURES.labels(self.sink).inc()
                self.log.error("put_events_auth_failed", error=str(error))
            if _unavailable(error):
                continue  # the target is down or busy: wait for it, spending no attempt
            attempts += 1
            if attempts >= self.settings.events_max_attempts:
                return Failed(f"PutEvents failed {attempts} times: {error}", refused=False)
            self.log.warning("put_events_retry", attempt=attempts, error=repr(error))
            await self.pause(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _dead_letter(self, call: dict[str, Any], reason: str) -> None:
        """The call's events on `orders.events.dlq`, to replay once the cause is fixed."""
        self.log.error("events_dead_lettered", events=len(call["eventList"]), reason=reason)
        unsent = Unsent(
            topic=topics.topic(topics.ORDERS, self.settings),
            key=call["userId"].encode(),
            value=json.dumps(call, default=str).encode(),
        )
        await self.dead_letter(unsent, reason)
        DEAD_LETTERED.labels(self.sink).inc(len(call["eventList"]))
