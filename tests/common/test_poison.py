"""Poison-proof messages: every message schema accepts a document or refuses it with a
validation error, whatever the document; what it accepts is sane; and the record reader all
consumers share turns any record into a message or a dead letter, never an exception."""

import base64
import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.records import MAX_DEAD_LETTER_PAYLOAD, dead_letter, read_message
from mgrecs.common.schemas import (
    EARLIEST,
    MAX_AHEAD,
    DeadLetter,
    InferShard,
    OrderEvent,
    ScheduleTick,
)
from support.poison_inputs import UNSEEN_CHARACTERS, raw_documents

EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    OrderEvent: {
        "schema_version": 1,
        "order_id": "o-1001",
        "ordered_at": "2026-11-20T10:15:00Z",
        "customer": {"customer_id": "c-42", "region": "north", "city": "Oslo", "age": 40},
        "lines": [
            {"product_id": "p-7", "quantity": 2, "price": "9.90", "category": "toys"},
            {"product_id": "p-8", "quantity": 1, "price": 120.5},
        ],
    },
    FeedbackEvent: {
        "customer_id": "C00001",
        "product_id": "P0007",
        "kind": "purchase",
        "occurred_at": "2026-11-26T10:15:00+01:00",
        "model_version": "v20261126-0300",
        "source": "cache",
        "experiment_id": "ease-vs-als",
        "arm": "treatment",
        "revenue": "19.80",
    },
    ScheduleTick: {"kind": "infer", "tick_id": "t-1", "requested_at": "2026-11-26T03:00:00Z"},
    InferShard: {"generation": 7, "shard": 1, "shards": 4},
    ProductEvent: {
        "product_id": "P0201",
        "name": "Eco Lamp 201",
        "category": "home-garden",
        "price": "39.90",
        "margin": "18.40",
        "in_stock": False,
        "launched_at": "2026-11-01T00:00:00Z",
        "attributes": {"brand": "Lumo", "size": 3, "dimmable": True, "watts": 7.5},
        "updated_at": "2026-11-20T10:15:00+01:00",
    },
}
"""A valid document of each message on a topic (DeadLetter is written, never consumed)."""
FREE_TEXT = {"product_name", "name", "category", "city", "email", "phone", "attributes"}
"""Fields of free text (a product name may be Arabic; a product's attributes, all of them):
the only strings that may hold bidi marks."""
PROPERTIES = settings(max_examples=150, deadline=None)


def _record(value: bytes | None, topic: str = "orders") -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord(topic, 0, 42, 0, 0, b"key", value, None, 3, len(value or b""), [])


def _assert_sane(value: Any, field: str = "") -> None:
    """What an accepted message holds: times in UTC within the sane range, finite numbers,
    ids without invisible characters."""
    if isinstance(value, BaseModel):
        _assert_sane(value.model_dump())
    elif isinstance(value, dict):
        for key, child in value.items():
            _assert_sane(child, field if field in FREE_TEXT else key)
    elif isinstance(value, list):
        for child in value:
            _assert_sane(child, field)
    elif isinstance(value, datetime):
        assert value.tzinfo == UTC
        assert EARLIEST <= value <= datetime.now(UTC) + MAX_AHEAD
    elif isinstance(value, float | Decimal):
        assert math.isfinite(value)
    elif isinstance(value, str) and field not in FREE_TEXT:
        assert not set(value) & set(UNSEEN_CHARACTERS), (field, value)


def _assert_clear(exc: ValidationError) -> None:
    """A refusal that says where and what."""
    errors = exc.errors()
    assert errors
    assert all(error["msg"] for error in errors)


@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda model: model.__name__)
def test_the_examples_are_valid(model: type[BaseModel]) -> None:
    _assert_sane(model.model_validate(EXAMPLES[model]))


@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda model: model.__name__)
@PROPERTIES
@given(data=st.data())
def test_a_message_is_accepted_sane_or_refused_clearly(
    model: type[BaseModel], data: st.DataObject
) -> None:
    raw = data.draw(raw_documents(EXAMPLES[model]))
    try:
        message = model.model_validate_json(raw)
    except ValidationError as exc:
        _assert_clear(exc)
        return
    _assert_sane(message)
    # what a producer accepted, a consumer reads back the same
    assert model.model_validate_json(message.model_dump_json()) == message


@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda model: model.__name__)
@PROPERTIES
@given(data=st.data())
def test_any_record_becomes_a_message_or_a_dead_letter_keeping_its_bytes(
    model: type[BaseModel], data: st.DataObject
) -> None:
    raw = data.draw(st.one_of(raw_documents(EXAMPLES[model]), st.just(b"")))
    record = _record(raw)
    read = read_message(record, model)
    if isinstance(read, model):
        return
    assert isinstance(read, str) and read
    letter = DeadLetter.model_validate_json(dead_letter(record, read).model_dump_json())
    assert letter.reason == read and letter.offset == 42 and letter.key == "key"
    if letter.payload_encoding == "base64":
        assert base64.b64decode(letter.payload) == raw
    else:
        assert letter.payload.encode() == raw


def test_a_time_utc_cannot_hold_is_refused_naming_the_field() -> None:
    document = {**EXAMPLES[OrderEvent], "ordered_at": "9999-12-31T23:00:00-05:00"}
    with pytest.raises(ValidationError) as raised:
        OrderEvent.model_validate(document)
    (error,) = raised.value.errors()
    assert error["loc"] == ("ordered_at",)
    assert "out of range" in error["msg"]


@pytest.mark.parametrize(
    ("since_2000", "from_now", "accepted"),
    [
        (timedelta(seconds=-1), None, False),
        (timedelta(0), None, True),
        (None, timedelta(hours=23), True),
        (None, timedelta(days=1, minutes=5), False),
    ],
)
def test_times_from_2000_to_a_day_ahead_are_sane(
    since_2000: timedelta | None, from_now: timedelta | None, accepted: bool
) -> None:
    """The moments are made when the test runs (not when it is collected, minutes earlier)."""
    moment = EARLIEST + since_2000 if since_2000 is not None else datetime.now(UTC) + from_now
    document = {**EXAMPLES[FeedbackEvent], "occurred_at": moment.isoformat()}
    try:
        event = FeedbackEvent.model_validate(document)
    except ValidationError as exc:
        assert not accepted
        assert exc.errors()[0]["loc"] == ("occurred_at",)
    else:
        assert accepted and event.occurred_at == moment


@pytest.mark.parametrize("character", list(UNSEEN_CHARACTERS))
def test_an_id_with_an_invisible_or_reordering_character_is_refused(character: str) -> None:
    document = json.loads(json.dumps(EXAMPLES[OrderEvent]))
    document["lines"][0]["product_id"] = f"p{character}7"
    with pytest.raises(ValidationError) as raised:
        OrderEvent.model_validate(document)
    assert raised.value.errors()[0]["loc"] == ("lines", 0, "product_id")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(number: str) -> None:
    text = json.dumps(EXAMPLES[FeedbackEvent]).replace('"19.80"', number)
    with pytest.raises(ValidationError):
        FeedbackEvent.model_validate_json(text)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty message"),
        (b"\xff\xfe{", "not JSON"),
        (b"[" * 10_000 + b"]" * 10_000, "not JSON"),
        (b'{"kind": "infer", "tick_id": "' + b"x" * 65 + b'"}', "tick_id"),
    ],
    ids=["empty", "not UTF-8", "deep nesting", "tick id too long"],
)
def test_the_reason_says_what_is_wrong(value: bytes, reason: str) -> None:
    read = read_message(_record(value, "schedule-ticks"), ScheduleTick)
    assert isinstance(read, str) and reason in read


def test_a_validator_that_raises_anything_still_gives_a_reason() -> None:
    class Touchy(BaseModel):
        value: int

        def model_post_init(self, context: Any) -> None:
            raise OverflowError("date value out of range")

    read = read_message(_record(b'{"value": 1}'), Touchy)
    assert read == "unreadable Touchy: OverflowError: date value out of range"


def test_a_letter_of_bytes_that_are_not_text_keeps_them_in_base64() -> None:
    raw = b"\x00\xff\xfe garbage \x80"
    letter = dead_letter(_record(raw), "not JSON")
    assert letter.payload_encoding == "base64"
    assert base64.b64decode(letter.payload) == raw


def test_a_huge_payload_is_cut_and_the_reason_says_so() -> None:
    letter = dead_letter(_record(b"x" * (MAX_DEAD_LETTER_PAYLOAD + 10)), "too big")
    assert len(letter.payload) == MAX_DEAD_LETTER_PAYLOAD
    assert "payload cut to" in letter.reason
