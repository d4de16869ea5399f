"""The self-hosted engine's bulk path: a batch's PutEvents calls in a few signed requests to
`/events/bulk` (mgrecs.common.personalize.BULK_EVENTS_PATH) instead of one botocore request
per customer and ten events, whose building, signing and parsing cost far more than the
events themselves (bench/RESULTS.md, bench-tracker).

Errors come back as botocore's `ClientError` with the engine's status and AWS error code,
so the events sink tells an outage from a refusal the same way for both paths.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from botocore.exceptions import ClientError

from mgrecs.common.personalize import BULK_EVENTS_PATH, MAX_BULK_EVENTS, signed_headers
from mgrecs.common.settings import Settings

MAX_BULK_BYTES = 2 * 1024 * 1024
"""A bulk is cut before it grows past this (calls of long `properties`), under the engine's
`max_request_bytes` (5 MiB by default)."""
CONNECT_SECONDS = 5.0
READ_SECONDS = 30.0
"""A bulk of MAX_BULK_EVENTS takes the engine tens of milliseconds; far longer is a hang."""
OPERATION = "PutEventsBulk"
UNKNOWN_OPERATION = "UnknownOperationException"
"""AWS's code for an operation the service does not have: what a 404 from an engine without
`/events/bulk` (one not yet upgraded) becomes, so the sink sends that bulk's calls one by one."""


@dataclass(frozen=True)
class Bulk:
    """One request: its body and the PutEvents calls in it (sent one by one if refused)."""

    body: bytes
    calls: list[dict[str, Any]]
    events: int


def _epoch(value: Any) -> float:
    """`sentAt` as botocore sends it: seconds since the epoch."""
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _wire(call: dict[str, Any]) -> bytes:
    return orjson.dumps(call, default=_epoch, option=orjson.OPT_PASSTHROUGH_DATETIME)


def bulks(
    calls: Sequence[dict[str, Any]],
    max_events: int = MAX_BULK_EVENTS,
    max_bytes: int = MAX_BULK_BYTES,
) -> list[Bulk]:
    """`calls` (PutEvents keyword arguments, each user's in order) cut into bulk requests
    of at most `max_events` events and about `max_bytes`, in the same order."""
    done: list[Bulk] = []
    parts: list[bytes] = []
    members: list[dict[str, Any]] = []
    events = size = 0
    for call in calls:
        part = _wire(call)
        count = len(call["eventList"])
        if members and (events + count > max_events or size + len(part) > max_bytes):
            done.append(_bulk(parts, members, events))
            parts, members, events, size = [], [], 0, 0
        parts.append(part)
        members.append(call)
        events += count
        size += len(part) + 1
    if members:
        done.append(_bulk(parts, members, events))
    return done


def _bulk(parts: list[bytes], calls: list[dict[str, Any]], events: int) -> Bulk:
    return Bulk(b'{"calls":[' + b",".join(parts) + b"]}", calls, events)


class BulkClient:
    """Sends bulks to the engine at `personalize_endpoint_url`, signed like the Personalize
    clients sign (SigV4, the same key), over one keep-alive connection pool."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        assert settings.personalize_endpoint_url, "the bulk path is the self-hosted engine's"
        self._settings = settings
        self._url = settings.personalize_endpoint_url.rstrip("/") + BULK_EVENTS_PATH
        self._session = session

    @staticmethod
    def session() -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_SECONDS, sock_read=READ_SECONDS)
        return aiohttp.ClientSession(timeout=timeout)

    async def send(self, bulk: Bulk) -> None:
        """Deliver `bulk`; a refusal or failure of the engine raises `ClientError` (its HTTP
        status and AWS error code), no answer raises aiohttp's or the OS's error."""
        headers = signed_headers(self._settings, "POST", self._url, bulk.body)
        headers["Content-Type"] = "application/json"
        async with self._session.post(self._url, data=bulk.body, headers=headers) as response:
            if response.status == 200:
                return
            text = await response.text(errors="replace")
            code = response.headers.get("x-amzn-ErrorType", "").split(":")[0]
            if not code and response.status == 404:  # an engine from before the bulk path
                code = UNKNOWN_OPERATION
            raise ClientError(
                {
                    "Error": {"Code": code or str(response.status), "Message": _message(text)},
                    "ResponseMetadata": {"HTTPStatusCode": response.status},
                },
                OPERATION,
            )


def _message(text: str) -> str:
    """The engine's `message`, else the start of whatever answered (a proxy's page)."""
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text[:200]
    message = answer.get("message") if isinstance(answer, dict) else None
    return str(message) if message is not None else text[:200]
