"""Whatever lies on `engine-events` (only engines write it, but a bug or an operator's tool
may put anything there): a follower reads a message or refuses it with a ValidationError,
which it counts and skips; it never stops following."""

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mgrecs.common.engine_events import AcceptedEvents
from mgrecs.engine_service.events import EventStore, Line
from mgrecs.engine_service.feed import decode, decode_plain, encode

TEXT = st.one_of(st.none(), st.text(max_size=20), st.integers(), st.booleans())
NEAR_VALID_EVENT = st.dictionaries(
    st.sampled_from(
        ["user_id", "event_id", "item_id", "region", "order_id", "order_version", "other"]
    ),
    TEXT,
)
NEAR_VALID = st.fixed_dictionaries(
    {"id": TEXT, "events": st.one_of(st.lists(NEAR_VALID_EVENT, max_size=5), TEXT)}
).map(lambda message: json.dumps(message).encode())


def _fold(value: bytes) -> int | None:
    """Lines followed, or None when the message is refused."""
    try:
        lines = decode(value)
    except ValidationError:
        return None
    return EventStore().follow(lines, at=1)


@given(st.one_of(st.binary(max_size=200), NEAR_VALID))
def test_any_message_is_read_or_refused_with_a_validation_error(value: bytes) -> None:
    followed = _fold(value)
    assert followed is None or followed >= 0


@given(
    st.lists(
        st.builds(
            Line,
            st.text(min_size=1, max_size=10),
            st.one_of(st.none(), st.text(max_size=10)),
            st.one_of(st.none(), st.text(max_size=10)),
            st.one_of(st.none(), st.text(max_size=10)),
        ),
        max_size=5,
    )
)
def test_what_an_engine_writes_reads_back_the_same(lines: list[Line]) -> None:
    assert decode(encode("m1", lines)) == lines
    assert decode_plain(encode("m1", lines)) == lines  # the follower's fast way


def _by_pydantic(value: bytes) -> list[Line] | None:
    try:
        message = AcceptedEvents.model_validate_json(value)
    except ValidationError:
        return None
    return [
        Line(e.user_id, e.event_id, e.item_id, e.region, e.order_id, e.order_version)
        for e in message.events
    ]


MEMBER = st.one_of(st.none(), st.text(max_size=10), TEXT)
AS_WRITTEN = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(min_size=1, max_size=70), TEXT),
        "events": st.lists(
            st.fixed_dictionaries(
                {"user_id": st.one_of(st.text(min_size=1, max_size=10), TEXT)},
                optional={
                    name: MEMBER
                    for name in ["event_id", "item_id", "region", "order_id", "order_version"]
                },
            ),
            max_size=4,
        ),
    }
).map(lambda message: json.dumps(message).encode())
"""Messages like engines write them, some member of another type or length here and there."""


@given(st.one_of(st.binary(max_size=200), NEAR_VALID, AS_WRITTEN))
def test_the_plain_reading_accepts_only_what_pydantic_accepts_with_the_same_lines(
    value: bytes,
) -> None:
    plain = decode_plain(value)
    if plain is not None:
        assert plain == _by_pydantic(value)


def test_a_message_without_events_is_refused() -> None:
    bad: dict[str, Any] = {"id": "m1"}
    assert _fold(json.dumps(bad).encode()) is None
