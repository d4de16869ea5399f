"""The engine's bulk of PutEvents calls (`/events/bulk`, the tracker's self-hosted path):
the same history as the calls sent one by one, validated whole (a refused bulk records
nothing), and any body answered with a 4xx and a message, never a 500."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mgrecs.common.kafka import ensure_topics
from mgrecs.common.personalize import (
    BULK_EVENTS_PATH,
    MAX_BULK_EVENTS,
    events_client,
    signed_headers,
)
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app
from mgrecs.engine_service.errors import AwsError
from mgrecs.engine_service.events import EventStore
from mgrecs.engine_service.protocol import MAX_PROBLEMS, BulkPutEventsRequest, parse
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.bulk import Bulk, BulkClient, bulks
from mgrecs.tracker.events import put_events_calls
from support.helpers import serve

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)


def _calls(settings: Settings) -> list[dict[str, Any]]:
    data = generate(seed=5, customers=30, products=25, orders=90, anchor=ANCHOR)
    orders = list(data.orders)
    # a correction and a cancellation of the first order, after it
    first = orders[0]
    corrected, cancelled = ANCHOR + timedelta(hours=1), ANCHOR + timedelta(hours=2)
    orders.append(first.model_copy(update={"lines": first.lines[:1], "updated_at": corrected}))
    orders.append(first.model_copy(update={"status": "cancelled", "updated_at": cancelled}))
    return put_events_calls(orders, settings.tracking_id)


def _history(store: EventStore, calls: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {call["userId"]: store.items(call["userId"]) for call in calls}


async def _send(settings: Settings, bulk: Bulk) -> None:
    async with BulkClient.session() as session:
        await BulkClient(settings, session).send(bulk)


async def test_a_bulk_leaves_the_history_its_calls_sent_one_by_one_leave(
    settings: Settings,
) -> None:
    calls = _calls(settings)
    one_by_one = create_app(settings)
    async with serve(one_by_one, settings.engine_port), events_client(settings) as client:
        for call in calls:
            await client.put_events(**call)
    apart = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}bulk-"})
    await ensure_topics(apart)  # its own `engine-events`: it must not follow the first app's
    in_bulk = create_app(apart)
    async with serve(in_bulk, settings.engine_port):
        for bulk in bulks(calls, max_events=37):  # several bulks, a user's calls across two
            await _send(settings, bulk)
        for bulk in bulks(calls):  # everything again: duplicates only
            await _send(settings, bulk)

    expected, got = one_by_one.state.engine.events, in_bulk.state.engine.events
    assert _history(got, calls) == _history(expected, calls)
    assert got.events_received == expected.events_received
    assert got.duplicates_ignored == expected.duplicates_ignored + expected.events_received
    assert got.region(calls[0]["userId"]) == expected.region(calls[0]["userId"])


async def test_a_refused_bulk_records_nothing(settings: Settings) -> None:
    calls = _calls(settings)
    stranger = dict(calls[3], trackingId="someone-else")
    too_many = [dict(calls[0], eventList=[calls[0]["eventList"][0]])] * (MAX_BULK_EVENTS + 1)
    engine = create_app(settings)
    async with serve(engine, settings.engine_port):
        for refused, message in [
            ([*calls[:3], stranger, *calls[4:]], "calls.3: Tracking ID someone-else is not"),
            (too_many, f"more than {MAX_BULK_EVENTS} in one bulk"),
        ]:
            with pytest.raises(ClientError) as raised:
                await _send(settings, bulks(refused, max_events=len(refused))[0])
            error = raised.value.response
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert error["Error"]["Code"] == "InvalidInputException"
            assert message in error["Error"]["Message"]
    assert engine.state.engine.events.events_received == 0


async def test_a_bulk_needs_a_signature_and_fits_the_request_limit(settings: Settings) -> None:
    calls = _calls(settings)
    bulk = bulks(calls)[0]
    small = settings.model_copy(update={"max_request_bytes": len(bulk.body) - 1})
    engine = create_app(small)
    async with serve(engine, settings.engine_port) as url:
        async with httpx.AsyncClient() as http:
            unsigned = await http.post(f"{url}{BULK_EVENTS_PATH}", content=bulk.body[:100])
        with pytest.raises(ClientError) as too_large:
            await _send(settings, bulk)
        wrong = settings.model_copy(update={"aws_secret_access_key": "not-the-secret"})
        with pytest.raises(ClientError) as forged:
            await _send(wrong, bulks(calls[:2])[0])
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert too_large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert too_large.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert forged.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert engine.state.engine.events.events_received == 0


# -- any body: a 4xx with a message, never a 500 --------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
ID = st.one_of(st.text(min_size=1, max_size=300), JSON)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "eventId": ID,
        "eventType": ID,
        "itemId": ID,
        "eventValue": JSON,
        "properties": st.one_of(st.builds(json.dumps, JSON), st.text(max_size=1100), JSON),
        "sentAt": st.one_of(
            st.floats(), st.integers(), st.datetimes().map(lambda d: d.isoformat()), JSON
        ),
    },
)
CALL = st.fixed_dictionaries(
    {},
    optional={
        "trackingId": st.one_of(st.just("mgrecs-tracking"), ID),
        "userId": ID,
        "sessionId": ID,
        "eventList": st.one_of(st.lists(EVENT, max_size=12), JSON),
    },
)
BODY = st.one_of(
    st.builds(lambda calls: {"calls": calls}, st.one_of(st.lists(CALL, max_size=4), JSON)),
    JSON,
)
APP = create_app(Settings(max_request_bytes=64 * 1024))
"""No lifespan: the bulk route needs neither the database nor a model."""


async def _post(body: bytes) -> httpx.Response:
    url = f"http://engine{BULK_EVENTS_PATH}"
    headers = signed_headers(Settings(), "POST", url, body)
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(url, content=body, headers=headers)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(BODY.map(lambda b: json.dumps(b).encode()), st.binary(max_size=200)))
def test_any_bulk_body_is_answered_with_a_4xx_and_a_message_never_a_500(body: bytes) -> None:
    response = asyncio.run(_post(body))
    if response.status_code == 200:
        return  # a valid bulk (Hypothesis found one): recorded
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["x-amzn-ErrorType"]
    assert response.json()["message"]


def test_a_bulk_with_many_problems_names_the_first_ten_and_counts_the_rest() -> None:
    """A bulk of bad events gets a message a person can read (and a dead letter that size)."""
    call = {"trackingId": "t", "userId": "u", "sessionId": "s", "eventList": [{"eventId": "e"}]}
    with pytest.raises(AwsError) as refused:
        parse(BulkPutEventsRequest, json.dumps({"calls": [call] * 50}).encode())
    named = refused.value.message.split("; ")
    assert len(named) == MAX_PROBLEMS + 1
    assert named[0].startswith("calls.0.eventList.0.")
    assert named[-1] == f"and {2 * 50 - MAX_PROBLEMS} more"  # no eventType, no sentAt: 2 each
