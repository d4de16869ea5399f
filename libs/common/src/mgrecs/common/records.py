"""Turning a Kafka record into a message, or into a dead letter saying why it is not one.

Every consumer reads its records here, so a record that cannot become a valid message is a
reason, whatever went wrong (bad JSON, bytes that are not UTF-8, nesting too deep, a value
that overflows, a bug in a validator): it is dead-lettered (`send_dead_letter`, the one way
every consumer does it) and the consumer goes on. Only the consumer's own infrastructure
(database, broker, engine) may make it stop and retry.
"""

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias, TypeVar

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mgrecs.common.metrics import DEAD_LETTERS
from mgrecs.common.schemas import ID_PATTERN, DeadLetter

M = TypeVar("M", bound=BaseModel)

MAX_REASON_ERRORS = 5
MAX_REASON_CHARS = 2000
"""A reason longer than this is cut: it is read by a person, and names the first problems."""
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
"""Characters of a payload kept in its dead letter: a message near the broker's size limit
would otherwise make a letter over it (JSON escaping grows it) that can never be sent."""


def read_message(record: ConsumerRecord[bytes, bytes], model: type[M]) -> M | str:
    """The `model` message in `record`, or a one-line reason why there is none. Never raises
    (but for the interpreter's own exits: cancellation, KeyboardInterrupt)."""
    if not record.value:
        return "empty message (no value)"
    try:
        return model.model_validate_json(record.value)
    except ValidationError as exc:
        return _cut(_validation_reason(exc, model))
    except Exception as exc:  # noqa: BLE001 - any record that cannot be read is poison
        return _cut(f"unreadable {model.__name__}: {type(exc).__name__}: {exc}")


def _validation_reason(exc: ValidationError, model: type[BaseModel]) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"not JSON: {errors[0]['msg']}"
    reasons = [
        f"{'.'.join(str(p) for p in error['loc']) or 'message'}: {_message(error)}"
        for error in errors[:MAX_REASON_ERRORS]
    ]
    if len(errors) > MAX_REASON_ERRORS:
        reasons.append(f"+{len(errors) - MAX_REASON_ERRORS} more")
    return f"invalid {model.__name__}: " + "; ".join(reasons)


def _message(error: ErrorDetails) -> str:
    """The error's message; for an id, what is wrong rather than the (long) pattern."""
    if error.get("ctx", {}).get("pattern") == ID_PATTERN:
        return "not a valid id (a control, bidi or zero-width character, or blank)"
    return error["msg"]


def _cut(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS] + "…"


class Source(Protocol):
    """What a dead letter keeps of the message it stands for: a consumed `ConsumerRecord`,
    or an `Unsent` message."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Unsent:
    """A message derived from consumed ones that its target refused (a PutEvents call): it
    was never on a partition, so its letter says -1."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int = -1
    offset: int = -1


Send: TypeAlias = Callable[..., Awaitable[object]]
"""Publishes on the dead-letter topic as `send(value, key=key)`: an aiokafka producer's
`send_and_wait` bound to the topic, or a FastStream publisher's `publish`."""


def dead_letter(source: Source, reason: str) -> DeadLetter:
    """A dead letter for `source`, keeping its key and payload: as text when it is UTF-8,
    else its exact bytes in base64 (`payload_encoding`); a huge payload is cut to its first
    MAX_DEAD_LETTER_PAYLOAD characters, as the reason then says."""
    raw = source.value or b""
    encoding: Literal["utf-8", "base64"] = "utf-8"
    try:
        payload = raw.decode()
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode(), "base64"
    if len(payload) > MAX_DEAD_LETTER_PAYLOAD:
        reason += f" (payload cut to {MAX_DEAD_LETTER_PAYLOAD:,} of {len(payload):,} characters)"
        payload = payload[:MAX_DEAD_LETTER_PAYLOAD]
    return DeadLetter(
        source_topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        key=source.key.decode(errors="replace") if source.key is not None else None,
        reason=reason,
        payload=payload,
        payload_encoding=encoding,
    )


async def send_dead_letter(
    send: Send, dlq_topic: str, letter_or_source: DeadLetter | Source, reason: str = ""
) -> DeadLetter:
    """Publish the dead letter of `letter_or_source` (built here with `reason` unless it is one
    already) through `send` to `dlq_topic`, keeping its key; counted per topic."""
    letter = (
        letter_or_source
        if isinstance(letter_or_source, DeadLetter)
        else dead_letter(letter_or_source, reason)
    )
    await send(letter.model_dump_json().encode(), key=letter.key.encode() if letter.key else None)
    DEAD_LETTERS.labels(dlq_topic).inc()
    return letter
