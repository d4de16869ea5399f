"""The events sink's bulk path to the self-hosted engine (`/events/bulk`), on the real broker
and the real engine: every line lands once, a redelivered order counts once, an engine that
is down costs nothing, a refused bulk ends on the dead-letter topic with its reason, and a
refused key is an auth failure, counted."""

import asyncio
import json
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from mgrecs.common import topics
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app as create_engine_app
from mgrecs.ingest.sample_data import generate
from mgrecs.tracker.events_sink import EventsSink
from support.helpers import eventually, read_topic, running, serve
from support.orders_topic import as_messages, caught_up, publish

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "events_max_attempts": 2,
            "events_breaker_failures": 2,
            "events_breaker_seconds": 0.2,
        }
    )


def _orders() -> list[OrderEvent]:
    return generate(seed=21, customers=40, products=30, orders=120, anchor=ANCHOR).orders


def _lines(orders: list[OrderEvent]) -> int:
    return sum(len(order.live_lines()) for order in orders)


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _operations(operation: str, outcome: str = "ok") -> float:
    return _sample("mgrecs_engine_operations_total", {"operation": operation, "outcome": outcome})


def _tracker(name: str) -> float:
    return _sample(f"mgrecs_tracker_{name}_total", {"sink": "events"})


async def _letters(settings: Settings) -> list[DeadLetter]:
    dlq = topics.topic(topics.ORDERS_EVENTS_DLQ, settings)
    records = await read_topic(settings.kafka_bootstrap, dlq)
    return [DeadLetter.model_validate_json(record.value) for record in records]


async def test_every_line_reaches_the_engine_once_in_bulk_and_a_redelivery_counts_once(
    fast_settings: Settings,
) -> None:
    orders = _orders()
    bulks, calls = _operations("PutEventsBulk"), _operations("PutEvents")
    engine = create_engine_app(fast_settings)
    async with serve(engine, fast_settings.engine_port), running(EventsSink(fast_settings)):
        await publish(fast_settings, as_messages(orders))
        await eventually(lambda: caught_up(fast_settings, EventsSink.group))
        # the same orders again, as a producer's retry or a replay would send them
        await publish(fast_settings, as_messages(orders))
        await eventually(lambda: caught_up(fast_settings, EventsSink.group))

    events = engine.state.engine.events
    assert (events.events_received, events.duplicates_ignored) == (_lines(orders), _lines(orders))
    assert _operations("PutEventsBulk") > bulks
    assert _operations("PutEvents") == calls  # no call went one by one
    for order in orders:
        assert {line.product_id for _, line in order.live_lines()} <= set(
            events.items(order.customer.customer_id)
        )
    assert await _letters(fast_settings) == []


async def test_an_engine_that_is_down_costs_nothing_and_the_backlog_drains_after(
    fast_settings: Settings,
) -> None:
    orders = _orders()
    async with running(EventsSink(fast_settings)):
        await publish(fast_settings, as_messages(orders))
        await eventually(
            lambda: _true(_sample("mgrecs_tracker_circuit_open", {"sink": "events"}) == 1)
        )
        await asyncio.sleep(1)  # far longer than 2 attempts with backoff would take
        assert not await caught_up(fast_settings, EventsSink.group)
        engine = create_engine_app(fast_settings)
        async with serve(engine, fast_settings.engine_port):
            await eventually(lambda: caught_up(fast_settings, EventsSink.group))

    events = engine.state.engine.events
    assert (events.events_received, events.duplicates_ignored) == (_lines(orders), 0)
    assert await _letters(fast_settings) == []


async def _true(value: bool) -> bool:
    return value


async def test_a_refused_bulk_is_sent_call_by_call_and_lands_on_the_dlq_with_the_reason(
    fast_settings: Settings,
) -> None:
    """The engine knows another tracking id: it refuses the bulk (recording nothing), then
    each of its calls; every event is dead-lettered once, with the engine's reason."""
    orders = _orders()
    stranger = fast_settings.model_copy(update={"tracking_id": "someone-else"})
    rejected, dead = _tracker("rejected"), _tracker("dead_lettered")
    refused_bulks = _operations("PutEventsBulk", "InvalidInputException")
    engine = create_engine_app(fast_settings)
    async with serve(engine, fast_settings.engine_port), running(EventsSink(stranger)):
        await publish(fast_settings, as_messages(orders))
        await eventually(lambda: caught_up(fast_settings, EventsSink.group))

    assert engine.state.engine.events.events_received == 0
    assert _operations("PutEventsBulk", "InvalidInputException") > refused_bulks
    letters = await _letters(fast_settings)
    lettered = [
        event["eventId"] for letter in letters for event in json.loads(letter.payload)["eventList"]
    ]
    assert sorted(lettered) == sorted(
        f"{order.order_id}#{line_no}" for order in orders for line_no, _ in order.live_lines()
    )
    for letter in letters:
        assert "refused by PutEvents" in letter.reason
        assert "Tracking ID someone-else is not known to this engine" in letter.reason
    assert _tracker("rejected") - rejected == _lines(orders)
    assert _tracker("dead_lettered") - dead == _lines(orders)


async def test_a_refused_key_is_an_auth_failure_counted_and_nothing_is_dead_lettered(
    fast_settings: Settings,
) -> None:
    orders = _orders()
    key = fast_settings.aws_access_key_id
    rotated = fast_settings.model_copy(update={"engine_credentials": f"{key}:rotated-secret"})
    failures = _tracker("auth_failures")
    refused_bulks = _operations("PutEventsBulk", "InvalidSignatureException")
    async with running(EventsSink(fast_settings)):
        refusing = create_engine_app(rotated)
        async with serve(refusing, fast_settings.engine_port):
            await publish(fast_settings, as_messages(orders))
            await eventually(lambda: _true(_tracker("auth_failures") >= failures + 2))
        accepting = create_engine_app(fast_settings)
        async with serve(accepting, fast_settings.engine_port):
            await eventually(lambda: caught_up(fast_settings, EventsSink.group))

    assert refusing.state.engine.events.events_received == 0
    assert _operations("PutEventsBulk", "InvalidSignatureException") >= refused_bulks + 2
    assert accepting.state.engine.events.events_received == _lines(orders)
    assert await _letters(fast_settings) == []
