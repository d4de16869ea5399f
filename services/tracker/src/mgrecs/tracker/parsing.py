"""Turning a Kafka record into a message (an `OrderEvent`, a `FeedbackEvent`), or into the
reason it is not one."""

from typing import TypeVar

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ValidationError

from mgrecs.common.schemas import DeadLetter, OrderEvent

M = TypeVar("M", bound=BaseModel)

MAX_REASON_ERRORS = 5
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
"""Characters of a payload kept in its dead letter: a message near the broker's size limit
would otherwise make a letter over it (JSON escaping grows it) that can never be sent."""


def parse_order(record: ConsumerRecord[bytes, bytes]) -> OrderEvent | str:
    """The order in `record`, or a one-line reason why there is none."""
    return parse_message(record, OrderEvent)


def parse_message(record: ConsumerRecord[bytes, bytes], model: type[M]) -> M | str:
    """The `model` message in `record`, or a one-line reason why there is none."""
    if record.value is None:
        return "empty message (no value)"
    try:
        return model.model_validate_json(record.value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            return f"not JSON: {errors[0]['msg']}"
        reasons = [
            f"{'.'.join(str(p) for p in error['loc']) or 'message'}: {error['msg']}"
            for error in errors[:MAX_REASON_ERRORS]
        ]
        if len(errors) > MAX_REASON_ERRORS:
            reasons.append(f"+{len(errors) - MAX_REASON_ERRORS} more")
        return f"invalid {model.__name__}: " + "; ".join(reasons)


def dead_letter(record: ConsumerRecord[bytes, bytes], reason: str) -> DeadLetter:
    """A dead letter for `record`, keeping its key and payload (undecodable bytes replaced;
    a huge payload cut to its first MAX_DEAD_LETTER_PAYLOAD characters, as the reason says)."""
    payload = (record.value or b"").decode(errors="replace")
    if len(payload) > MAX_DEAD_LETTER_PAYLOAD:
        reason += f" (payload cut to {MAX_DEAD_LETTER_PAYLOAD:,} of {len(payload):,} characters)"
        payload = payload[:MAX_DEAD_LETTER_PAYLOAD]
    return DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        reason=reason,
        payload=payload,
    )
