"""Correlation ids: an HTTP request's `X-Request-ID` follows its work into the logs of every
service it reaches (as a Kafka header `request_id` between processes)."""

import re
from collections.abc import Iterable, Sequence
from contextvars import ContextVar

from aiokafka.structs import ConsumerRecord

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


def header_value(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first `name` header's value (latin-1, as ASGI servers decode), None without one."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def with_header(
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
