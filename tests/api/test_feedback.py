"""`POST /v1/feedback` and the tracker's feedback sink, on the real broker and database."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from mgrecs.api.app import create_app
from mgrecs.common import topics
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.schemas import DeadLetter
from mgrecs.common.settings import Settings
from mgrecs.tracker.feedback_sink import FeedbackSink
from support.experiments import EXPERIMENT
from support.helpers import asgi_client, eventually, read_topic, running

AT = "2026-11-26T10:15:00Z"


def event(**fields: Any) -> dict[str, Any]:
    base = {"customer_id": "c1", "product_id": "p1", "kind": "impression", "occurred_at": AT}
    return base | fields


@pytest.fixture
def feedback_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"experiments": [EXPERIMENT], "max_feedback_events": 5})


@pytest.fixture
async def client(feedback_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(feedback_settings)) as http:
        yield http


async def rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM feedback_events ORDER BY occurred_at, event_id")


async def row_count(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM feedback_events")
    return count


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"events": [event(kind="like")]}, "events.0.kind"),
        ({"events": [event(customer_id=None)]}, "events.0.customer_id"),
        ({"events": [{"product_id": "p1", "kind": "click", "occurred_at": AT}]}, "customer_id"),
        ({"events": [event(occurred_at="2026-11-26T10:15:00")]}, "events.0.occurred_at"),
        ({"events": [event(occurred_at="0001-01-01T00:00:00+01:00")]}, "events.0.occurred_at"),
        ({"events": [event(kind="click", revenue="3.00")]}, "revenue: only a purchase"),
        ({"events": [event(kind="purchase", revenue="-1")]}, "events.0.revenue"),
        ({"events": [event(experiment_id="ab1")]}, "experiment_id and arm"),
        ({"events": [event(experiment_id="ab1", arm="nope")]}, "events.0.arm: no arm nope"),
        ({"events": [event(experiment_id="zz", arm="control")]}, "events.0.experiment_id"),
        (  # c1 is in control: a forged result
            {"events": [event(experiment_id="ab1", arm="treatment")]},
            "events.0.arm: customer c1 is in arm control of ab1",
        ),
        ({"events": [event(product_id="bad\nid")]}, "events.0.product_id"),
        ({"events": [event(colour="red")]}, "events.0.colour"),
        ({"events": []}, "events"),
        ({"events": [event()] * 6}, "events: at most 5 events"),
    ],
)
async def test_invalid_feedback_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], named: str
) -> None:
    response = await client.post("/v1/feedback", json=body)
    assert response.status_code == 422
    assert named in response.json()["detail"]


async def test_feedback_needs_a_read_key_once_keys_are_configured(
    feedback_settings: Settings,
) -> None:
    feedback_settings.api_read_keys = "read-key"
    body = {"events": [event()]}
    async with asgi_client(create_app(feedback_settings)) as http:
        anonymous = await http.post("/v1/feedback", json=body)
        wrong = await http.post("/v1/feedback", json=body, headers={"X-API-Key": "guess"})
        keyed = await http.post("/v1/feedback", json=body, headers={"X-API-Key": "read-key"})
    assert anonymous.status_code == wrong.status_code == 401
    assert keyed.status_code == 202, keyed.text


def test_derived_event_id_is_stable_and_content_bound() -> None:
    one = FeedbackEvent.model_validate(event(kind="purchase", revenue="19.8"))
    same = FeedbackEvent.model_validate(
        event(kind="purchase", revenue="19.80", occurred_at="2026-11-26T11:15:00+01:00")
    )
    other = FeedbackEvent.model_validate(event(kind="purchase", revenue="19.90"))
    given = FeedbackEvent.model_validate(event(event_id="client-1"))
    assert one.event_id == same.event_id
    assert str(one.event_id).startswith("fb-")
    assert other.event_id != one.event_id
    assert given.event_id == "client-1"


async def test_feedback_lands_in_postgres_once_even_when_sent_again(
    client: httpx.AsyncClient, feedback_settings: Settings, pool: asyncpg.Pool
) -> None:
    batch = {
        "events": [
            event(model_version="v1", source="cache", experiment_id="ab1", arm="control"),
            event(kind="click", occurred_at="2026-11-26T10:16:00Z", event_id="client-7"),
            event(
                kind="purchase",
                occurred_at="2026-11-26T10:20:00Z",
                revenue="19.80",
                model_version="v1",
            ),
        ]
    }
    first = await client.post("/v1/feedback", json=batch)
    assert first.status_code == 202
    assert first.json()["accepted"] == 3
    ids = first.json()["event_ids"]
    assert ids[1] == "client-7" and len(set(ids)) == 3
    async with running(FeedbackSink(feedback_settings)):
        await eventually(lambda: _has(pool, 3))
        again = await client.post("/v1/feedback", json=batch)  # a client retry
        assert again.json()["event_ids"] == ids
        newer = await client.post("/v1/feedback", json={"events": [event(product_id="p2")]})
        assert newer.status_code == 202
        await eventually(lambda: _has(pool, 4))  # the retry added nothing, the new one did
    stored = await rows(pool)
    by_id = {r["event_id"]: r for r in stored}
    assert set(by_id) == {*ids, newer.json()["event_ids"][0]}
    impression = by_id[ids[0]]
    assert (impression["experiment_id"], impression["arm"], impression["source"]) == (
        "ab1",
        "control",
        "cache",
    )
    assert impression["occurred_at"] == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    purchase = by_id[ids[2]]
    assert (purchase["kind"], purchase["revenue"]) == ("purchase", Decimal("19.80"))
    assert by_id["client-7"]["kind"] == "click"


async def _has(pool: asyncpg.Pool, count: int) -> bool:
    return await row_count(pool) == count


async def test_malformed_feedback_goes_to_the_dlq_with_the_reason(
    feedback_settings: Settings, pool: asyncpg.Pool
) -> None:
    good = FeedbackEvent.model_validate(event(event_id="good-1"))
    messages = [
        (b"c1", b"{not json"),
        (b"c1", json.dumps(event(kind="click", revenue="2.00")).encode()),
        (b"c1", good.model_dump_json().encode()),
        (b"c1", json.dumps({"kind": "impression"}).encode()),
        (b"c1", good.model_dump_json().encode()),  # redelivered: written once
    ]
    producer = AIOKafkaProducer(bootstrap_servers=feedback_settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(
                topics.topic(topics.FEEDBACK, feedback_settings), value, key=key
            )
    finally:
        await producer.stop()
    dlq = topics.topic(topics.FEEDBACK_DLQ, feedback_settings)

    async def letters() -> list[DeadLetter]:
        records = await read_topic(feedback_settings.kafka_bootstrap, dlq)
        return [DeadLetter.model_validate_json(r.value) for r in records]

    async with running(FeedbackSink(feedback_settings)):
        found = await eventually(lambda: _at_least(letters, 3))
        await eventually(lambda: _has(pool, 1))
    reasons = sorted(letter.reason for letter in found)
    assert reasons[0].startswith("invalid FeedbackEvent: customer_id: Field required")
    assert "revenue: only a purchase has revenue" in reasons[1]
    assert reasons[2].startswith("not JSON")
    assert all(letter.source_topic.endswith("feedback") for letter in found)
    assert [r["event_id"] for r in await rows(pool)] == ["good-1"]


async def _at_least(read: Any, count: int) -> Any:
    found = await read()
    return found if len(found) >= count else None


async def test_feedback_with_the_broker_down_is_503(settings: Settings) -> None:
    down = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    async with asgi_client(create_app(down)) as http:
        response = await http.post("/v1/feedback", json={"events": [event()]})
    assert response.status_code == 503
    assert "send it again" in response.json()["detail"]


async def test_published_feedback_is_keyed_by_customer_and_carries_the_request_id(
    client: httpx.AsyncClient, feedback_settings: Settings
) -> None:
    batch = {"events": [event(), event(customer_id="c2", product_id="p2")]}
    response = await client.post("/v1/feedback", json=batch, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 202
    records = await read_topic(
        feedback_settings.kafka_bootstrap, topics.topic(topics.FEEDBACK, feedback_settings)
    )
    assert sorted(r.key for r in records) == [b"c1", b"c2"]
    assert all(("request_id", b"req-42") in r.headers for r in records)
    published = [FeedbackEvent.model_validate_json(r.value).event_id for r in records]
    assert sorted(published) == sorted(response.json()["event_ids"])
