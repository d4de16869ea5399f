"""Correlation ids: an HTTP request's `X-Request-ID` follows its work into the logs of every
service it reaches (as a Kafka header `request_id` between processes)."""

import re
import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar

import structlog
from aiokafka.structs import ConsumerRecord
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
HEADER_NAME = HEADER.lower().encode()
KAFKA_HEADER = "request_id"
VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What an incoming id may look like: anything else (log injection, huge) gets a new uuid."""

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def kafka_headers() -> list[tuple[str, bytes]]:
    """The headers that carry the current request's id to a consumer (none outside one)."""
    current = request_id.get()
    return [] if current is None else [(KAFKA_HEADER, current.encode())]


def publish_headers() -> dict[str, str]:
    """`kafka_headers` as a FastStream publisher takes them."""
    current = request_id.get()
    return {} if current is None else {KAFKA_HEADER: current}


def message_id(record: ConsumerRecord[bytes, bytes]) -> str:
    """The request id a producer put on `record`, else where it sits: topic/partition/offset."""
    for name, value in record.headers or ():
        if name == KAFKA_HEADER:
            text: str = value.decode(errors="replace")
            if VALID.fullmatch(text):
                return text
    return f"{record.topic}/{record.partition}/{record.offset}"


def message_ids(records: Iterable[ConsumerRecord[bytes, bytes]], limit: int = 20) -> list[str]:
    """The distinct ids of a batch's records (the first `limit`), for its log lines."""
    ids: dict[str, None] = {}
    for record in records:
        ids.setdefault(message_id(record))
        if len(ids) >= limit:
            break
    return list(ids)


class RequestIdMiddleware:
    """Takes the request's `X-Request-ID` (or makes one), binds it as `request_id` in the log
    context and the `request_id` variable for the request, and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope["headers"], HEADER_NAME)
        current = incoming if incoming and VALID.fullmatch(incoming) else uuid.uuid4().hex
        echoed = (HEADER_NAME, current.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_header(message["headers"], echoed)
            await send(message)

        token = request_id.set(current)
        # Tokens, not `bound_contextvars`: that one copies the whole context to save what it
        # replaces, on every request; a token restores the same.
        bound = structlog.contextvars.bind_contextvars(request_id=current)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            request_id.reset(token)


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _with_header(
    headers: Sequence[tuple[bytes, bytes]], header: tuple[bytes, bytes]
) -> list[tuple[bytes, bytes]]:
    """`headers` with `header` set, as starlette's `MutableHeaders` sets one (in the place
    of the first of that name, the others dropped; else last), without its copies."""
    kept = [item for item in headers if item[0] != header[0]]
    if len(kept) == len(headers):
        kept.append(header)
    else:
        kept.insert(next(n for n, item in enumerate(headers) if item[0] == header[0]), header)
    return kept
