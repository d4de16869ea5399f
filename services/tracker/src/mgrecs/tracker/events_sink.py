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
"""

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from mgrecs.common import topics
from mgrecs.common.correlation import message_id
from mgrecs.common.kafka import make_producer, send_dead_letter
from mgrecs.common.personalize import events_client
from mgrecs.common.records import read_message
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.tracker.breaker import CircuitBreaker
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
REJECTED_CODES = {"InvalidInputException", "ValidationException"}
"""The target refuses these events for good: retrying would block the partition forever."""
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


class EventsSink(ConsumerWorker[list[list[dict[str, Any]]]]):
    """Consumer group `mgrecs-tracker-events`: order lines to PutEvents."""

    sink = "events"
    group = topics.TRACKER_EVENTS_GROUP

    async def open(self, stack: AsyncExitStack) -> None:
        self._client: Any = await stack.enter_async_context(events_client(self.settings))
        self._producer = make_producer(self.settings)
        await self._producer.start()
        stack.push_async_callback(self._producer.stop)
        self._dlq = topics.topic(topics.ORDERS_EVENTS_DLQ, self.settings)
        self._breaker = CircuitBreaker(
            self.sink, self.settings.events_breaker_failures, self.settings.events_breaker_seconds
        )

    async def ready(self) -> str:
        """Also the PutEvents target: not ready while the circuit breaker holds it as down."""
        broker = await super().ready()
        if broker == "ok" and self._breaker.is_open:
            return "PutEvents target down (circuit open)"
        return broker

    def prepare(self, records: list[Record]) -> list[list[dict[str, Any]]]:
        """The batch's PutEvents calls, grouped by user (each user's in order)."""
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
        by_user: dict[str, list[dict[str, Any]]] = {}
        # AWS (no endpoint URL) cannot take a removal back: it gets the purchases only.
        cancels = bool(self.settings.personalize_endpoint_url)
        for call in put_events_calls(orders, self.settings.tracking_id, cancels):
            by_user.setdefault(call["userId"], []).append(call)
        return list(by_user.values())

    async def handle(self, batch: list[list[dict[str, Any]]]) -> None:
        slots = asyncio.Semaphore(CALLS_IN_FLIGHT)
        tasks = [asyncio.create_task(self._put_in_order(calls, slots)) for calls in batch]
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
        attempts, delay = 0, BACKOFF_START
        while True:
            if not await self._breaker.closed(self._stopping):
                raise StoppedError
            try:
                await self._client.put_events(**call)
            except TRANSIENT_ERRORS as exc:
                error: Exception = exc
            else:
                self._breaker.success()
                FORWARDED.labels(self.sink).inc(len(call["eventList"]))
                return
            if _error_code(error) in REJECTED_CODES:
                self._breaker.success()  # the target answered: it is up
                REJECTED.labels(self.sink).inc(len(call["eventList"]))
                await self._dead_letter(call, f"refused by PutEvents: {error}")
                return
            RETRIES.labels(self.sink).inc()
            self._breaker.failure()
            if _auth_failure(error):
                AUTH_FAILURES.labels(self.sink).inc()
                self.log.error("put_events_auth_failed", error=str(error))
            if _unavailable(error):
                continue  # the target is down or busy: wait for it, spending no attempt
            attempts += 1
            if attempts >= self.settings.events_max_attempts:
                await self._dead_letter(call, f"PutEvents failed {attempts} times: {error}")
                return
            self.log.warning("put_events_retry", attempt=attempts, error=repr(error))
            await self.pause(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _dead_letter(self, call: dict[str, Any], reason: str) -> None:
        """The call's events on `orders.events.dlq`, to replay once the cause is fixed."""
        self.log.error("events_dead_lettered", events=len(call["eventList"]), reason=reason)
        letter = DeadLetter(
            source_topic=topics.topic(topics.ORDERS, self.settings),
            partition=-1,
            offset=-1,
            key=call["userId"],
            reason=reason,
            payload=json.dumps(call, default=str),
        )
        await self.retrying(
            lambda: send_dead_letter(self._producer, self._dlq, letter), (KafkaError,), "dlq"
        )
        DEAD_LETTERED.labels(self.sink).inc(len(call["eventList"]))
