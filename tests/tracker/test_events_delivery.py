"""The PutEvents sink under target faults: an outage opens the circuit (calls wait, nothing is
dead-lettered, the backlog drains after), and so does a target refusing our credentials (403),
while a call the target keeps failing, or refuses, lands on `orders.events.dlq` with its
events and the sink goes on. The target is a fake of the PutEvents API (AWS is outside the
system), or the real engine service, reached through the real aioboto3 client."""

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from mgrecs.common import topics
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app as create_engine_app
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.events_sink import EventsSink
from support.engine import bundle_lines, register_model
from support.helpers import eventually, read_topic, running, serve
from support.orders_topic import as_messages, caught_up, publish

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)


class FlakyPutEvents:
    """PutEvents that can be down (503 for all), fail one user for good (500), or refuse one."""

    def __init__(self) -> None:
        self.down = False
        self.calls_while_down = 0
        self.failing_users: set[str] = set()
        self.refused_users: set[str] = set()
        self.accepted: Counter[str] = Counter()
        self.app = FastAPI()
        self.app.post("/events")(self.put_events)

    async def put_events(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if self.down:
            self.calls_while_down += 1
            return JSONResponse({"message": "unavailable"}, status_code=503)
        if body["userId"] in self.failing_users:
            return JSONResponse({"message": "internal error"}, status_code=500)
        if body["userId"] in self.refused_users:
            return JSONResponse(
                {"__type": "InvalidInputException", "message": "bad event"}, status_code=400
            )
        self.accepted.update(event["eventId"] for event in body["eventList"])
        return JSONResponse({})


@pytest.fixture
async def target(settings: Settings) -> AsyncIterator[FlakyPutEvents]:
    fake = FlakyPutEvents()
    async with serve(fake.app, settings.engine_port):
        yield fake


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "events_max_attempts": 3,
            "events_breaker_failures": 3,
            "events_breaker_seconds": 0.2,
        }
    )


def _orders() -> list[OrderEvent]:
    return generate(seed=8, customers=15, products=20, orders=40, anchor=ANCHOR).orders


def _event_ids(orders: list[OrderEvent]) -> set[str]:
    return {f"{o.order_id}#{n}" for o in orders for n in range(1, len(o.lines) + 1)}


async def _letters(settings: Settings) -> list[DeadLetter]:
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.ORDERS_EVENTS_DLQ, settings)
    )
    return [DeadLetter.model_validate_json(record.value) for record in records]


def _circuit_open() -> float | None:
    return REGISTRY.get_sample_value("mgrecs_tracker_circuit_open", {"sink": "events"})


async def _opened() -> bool:
    return _circuit_open() == 1


async def _at_least(value: Callable[[], float], minimum: float) -> bool:
    return value() >= minimum


async def test_an_outage_opens_the_circuit_and_the_backlog_drains_after(
    fast_settings: Settings, target: FlakyPutEvents
) -> None:
    fast_settings.events_bulk = False  # PutEvents calls only, as to AWS (the fake's API)
    orders = _orders()
    target.down = True
    await publish(fast_settings, as_messages(orders))

    async with running(EventsSink(fast_settings)):
        await eventually(_opened)
        await asyncio.sleep(3)  # far longer than 3 attempts with backoff would take
        assert await _letters(fast_settings) == []
        # open periods of 0.2, 0.4, 0.8, 1.6 s: a probe each, not every call hammering
        assert target.calls_while_down < 40
        target.down = False
        await eventually(lambda: caught_up(fast_settings, EventsSink.group))

    assert set(target.accepted) == _event_ids(orders)
    assert max(target.accepted.values()) == 1
    assert _circuit_open() == 0
    assert await _letters(fast_settings) == []


@pytest.mark.parametrize("bulk", [False, True], ids=["put-events", "target-without-bulk"])
async def test_a_call_that_keeps_failing_or_is_refused_is_dead_lettered(
    fast_settings: Settings, target: FlakyPutEvents, bulk: bool
) -> None:
    """With the bulk path on, the fake (like an engine not yet upgraded) answers each bulk
    404: its calls go one by one, with the same outcome."""
    fast_settings.events_bulk = bulk
    orders = _orders()
    failing, refused = orders[0].customer.customer_id, orders[1].customer.customer_id
    assert failing != refused
    target.failing_users.add(failing)
    target.refused_users.add(refused)
    await publish(fast_settings, as_messages(orders))
    dead_before = (
        REGISTRY.get_sample_value("mgrecs_tracker_dead_lettered_total", {"sink": "events"}) or 0.0
    )

    async with running(EventsSink(fast_settings)):
        await eventually(lambda: caught_up(fast_settings, EventsSink.group))

    others = [o for o in orders if o.customer.customer_id not in (failing, refused)]
    assert set(target.accepted) == _event_ids(others)
    letters = await _letters(fast_settings)
    by_user: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        assert letter.key is not None
        by_user.setdefault(letter.key, []).append(letter)
    assert set(by_user) == {failing, refused}
    assert all("PutEvents failed 3 times" in letter.reason for letter in by_user[failing])
    assert all("refused by PutEvents" in letter.reason for letter in by_user[refused])
    lettered: set[str] = set()
    for letter in letters:
        call: dict[str, Any] = json.loads(letter.payload)
        lettered.update(event["eventId"] for event in call["eventList"])
    mine = [o for o in orders if o.customer.customer_id in (failing, refused)]
    assert lettered == _event_ids(mine)
    dead_after = REGISTRY.get_sample_value("mgrecs_tracker_dead_lettered_total", {"sink": "events"})
    assert dead_after == dead_before + len(lettered)


async def test_a_refused_key_is_an_outage_and_everything_lands_once_the_secret_is_fixed(
    fast_settings: Settings, pool: asyncpg.Pool
) -> None:
    """The real engine checks SigV4: while it holds another secret for our key, the sink's
    calls get 403s, which open the circuit and count as auth failures; nothing is
    dead-lettered. Once the engine is restarted with the sink's secret, every event lands,
    once, without restarting the sink."""
    orders = _orders()
    # One attempt: any failure counted against the calls would dead-letter them at once.
    fast_settings.events_max_attempts = 1
    key = fast_settings.aws_access_key_id
    rotated = fast_settings.model_copy(
        update={"engine_model_poll_seconds": 0.2, "engine_credentials": f"{key}:rotated-secret"}
    )
    fixed = rotated.model_copy(
        update={"engine_credentials": f"{key}:{fast_settings.aws_secret_access_key}"}
    )
    await register_model(pool, rotated, "v1", bundle_lines())
    await publish(fast_settings, as_messages(orders))

    def auth_failures() -> float:
        return (
            REGISTRY.get_sample_value("mgrecs_tracker_auth_failures_total", {"sink": "events"})
            or 0.0
        )

    before = auth_failures()
    async with running(EventsSink(fast_settings)):
        refusing = create_engine_app(rotated)
        async with serve(refusing, rotated.engine_port):
            await eventually(lambda: _at_least(auth_failures, before + 3))
            assert _circuit_open() == 1
            await asyncio.sleep(2)  # far longer than 3 attempts with backoff would take
            assert not await caught_up(fast_settings, EventsSink.group)
        assert await _letters(fast_settings) == []
        assert refusing.state.engine.events.events_received == 0

        accepting = create_engine_app(fixed)
        async with serve(accepting, fixed.engine_port):
            await eventually(lambda: caught_up(fast_settings, EventsSink.group))
    events = accepting.state.engine.events
    assert (events.events_received, events.duplicates_ignored) == (len(_event_ids(orders)), 0)
    assert await _letters(fast_settings) == []
    assert _circuit_open() == 0
