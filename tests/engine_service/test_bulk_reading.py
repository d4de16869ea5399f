"""The bulk's plain reading (mgrecs.engine_service.bulk): the tracker's bulks take it, and
whatever the body, it accepts only what pydantic's `BulkPutEventsRequest` accepts, with the
same lines; anything else is pydantic's to accept or refuse with a message."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.common.personalize import MAX_BULK_EVENTS
from mgrecs.common.schemas import EARLIEST
from mgrecs.common.settings import Settings
from mgrecs.engine_service.bulk import BulkEvents, read_bulk, read_plain
from mgrecs.engine_service.errors import AwsError
from mgrecs.engine_service.protocol import BulkPutEventsRequest, lines_of, parse
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.bulk import bulks
from mgrecs.tracker.events import put_events_calls
from support.poison_inputs import json_values, near_valid, raw_documents

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)
CALLS = put_events_calls(
    list(generate(seed=3, customers=5, products=8, orders=6, anchor=ANCHOR).orders),
    Settings().tracking_id,
)
TRACKER_BODY = bulks(CALLS)[0].body
"""A bulk exactly as the tracker sends it."""
EXAMPLE = json.loads(bulks(CALLS[:2])[0].body)


def _by_pydantic(body: bytes) -> BulkEvents | None:
    """What the pydantic path makes of `body` (None: refused)."""
    try:
        request = parse(BulkPutEventsRequest, body)
    except AwsError:
        return None
    return BulkEvents(
        [call.tracking_id for call in request.calls],
        [
            line
            for call in request.calls
            for line in lines_of(call.user_id or call.session_id, call.event_list)
        ],
    )


def test_the_trackers_bulk_is_read_plainly_with_pydantics_lines() -> None:
    plain = read_plain(TRACKER_BODY)
    assert plain is not None
    assert plain == _by_pydantic(TRACKER_BODY)
    assert len(plain.lines) == sum(len(call["eventList"]) for call in CALLS)
    first = plain.lines[0]
    assert first.order_id and first.order_version and first.event_id


def _with(changes: dict[str, Any], where: str = "event") -> bytes:
    document = json.loads(json.dumps(EXAMPLE))
    target = document["calls"][0] if where == "call" else document["calls"][0]["eventList"][0]
    target.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "body",
    [
        _with({"sent_at": 1_764_000_000}),  # a member under its Python name
        _with({"sentAt": "2026-11-20T10:15:00Z"}),  # a time as text
        _with({"eventValue": "1.5"}),  # a number as text
        _with({"event_list": EXAMPLE["calls"][0]["eventList"]}, "call"),
    ],
)
def test_what_the_plain_reading_leaves_to_pydantic_is_read_as_before(body: bytes) -> None:
    assert read_plain(body) is None
    assert read_bulk(body) == _by_pydantic(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_with({"sentAt": EARLIEST.timestamp() - 1}), "sentAt"),
        (_with({"sentAt": True}), "sentAt"),
        (_with({"properties": "[1]"}), "properties must be a JSON object"),
        (_with({"properties": "{" + " " * 1024 + "}"}), "properties"),
        (_with({"eventType": ""}), "eventType"),
        (_with({"itemId": "x" * 257}), "itemId"),
        (_with({"userId": ""}, "call"), "userId"),
        (_with({"eventList": []}, "call"), "eventList"),
        (_with({"eventList": EXAMPLE["calls"][0]["eventList"] * 11}, "call"), "eventList"),
        (
            json.dumps({"calls": [EXAMPLE["calls"][0]] * (MAX_BULK_EVENTS + 1)}).encode(),
            "more than",
        ),
        (b'{"calls": []}', "calls"),
    ],
)
def test_a_bad_bulk_is_refused_with_pydantics_message(body: bytes, problem: str) -> None:
    assert read_plain(body) is None
    with pytest.raises(AwsError) as refused:
        read_bulk(body)
    assert refused.value.status == 400
    assert problem in refused.value.message


def test_a_member_given_twice_counts_as_pydantic_counts_it() -> None:
    """Both orjson and pydantic's JSON reader keep the last of repeated members."""
    call = json.dumps(EXAMPLE["calls"][0])
    body = f'{{"calls": [{call}], "calls": [{call}, {call}]}}'.encode()
    assert read_plain(body) == _by_pydantic(body)


EVENT_VALUES = st.one_of(json_values, st.sampled_from([EARLIEST.timestamp(), 1e20, 2**63]))
BODIES = st.one_of(
    raw_documents(EXAMPLE),
    near_valid(EXAMPLE).map(lambda document: json.dumps(document).encode()),
    st.builds(
        lambda member, value: _with({member: value}),
        st.sampled_from(["eventId", "eventType", "itemId", "eventValue", "properties", "sentAt"]),
        st.one_of(EVENT_VALUES, json_values.map(json.dumps)),
    ),
)


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_the_plain_reading_accepts_only_what_pydantic_accepts_with_the_same_lines(
    body: bytes,
) -> None:
    plain = read_plain(body)
    expected = _by_pydantic(body)
    if plain is not None:
        assert plain == expected
    try:
        got = read_bulk(body)
    except AwsError as refused:  # never any other exception: that would be a 500
        assert refused.status == 400 and refused.message
        assert expected is None
    else:
        assert got == expected
