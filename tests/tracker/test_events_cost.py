"""What the events sink counts for the cost report, on the real broker and the real engine:
after a known set of orders, the events and the PutEvents calls (at most 10 events each, as
AWS bills them, whether they went one by one or in bulk), flushed to `usage_hourly`. How many
calls depends on how the broker batches the orders (a customer's lines in one batch share
calls): one by one they are exactly the calls the engine answered; in bulk, between the
calls of all orders in one batch and those of each order alone."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from mgrecs.common import usage
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.common.usage import METER, mode_of
from mgrecs.engine_service.app import create_app as create_engine_app
from mgrecs.ingest.sample_data import generate
from mgrecs.store.usage import metering, usage_between
from mgrecs.tracker.events import put_events_calls
from mgrecs.tracker.events_sink import EventsSink
from support.helpers import eventually, running, serve
from support.orders_topic import as_messages, caught_up, publish

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)


def _orders() -> list[OrderEvent]:
    return generate(seed=7, customers=20, products=15, orders=60, anchor=ANCHOR).orders


@pytest.mark.parametrize("bulk", [True, False])
async def test_the_events_sink_counts_each_put_events_call_and_event(
    settings: Settings, pool: asyncpg.Pool, bulk: bool
) -> None:
    sink_settings = settings.model_copy(update={"events_bulk": bulk})
    orders = _orders()
    calls = put_events_calls(orders, sink_settings.tracking_id, cancels=True)
    alone = sum(len(put_events_calls([o], sink_settings.tracking_id)) for o in orders)
    answered = _put_events_answered()
    METER.take("tracker")  # what other tests left in this process's meter
    async with (
        serve(create_engine_app(sink_settings), sink_settings.engine_port),
        metering(sink_settings, mode_of(sink_settings), "tracker", pool),
        running(EventsSink(sink_settings)),
    ):
        await publish(sink_settings, as_messages(orders))
        await eventually(lambda: caught_up(sink_settings, EventsSink.group))

    now = datetime.now(UTC)
    rows = await usage_between(pool, now - timedelta(days=1), now + timedelta(hours=1))
    counted = {
        row.metric: row.value
        for row in rows
        if (row.mode, row.service) == ("self-hosted", "tracker")
        and row.metric in (usage.PUT_EVENTS_CALLS, usage.EVENTS)
    }
    assert counted[usage.EVENTS] == sum(len(call["eventList"]) for call in calls)
    if bulk:
        assert len(calls) <= counted[usage.PUT_EVENTS_CALLS] <= alone
    else:
        assert counted[usage.PUT_EVENTS_CALLS] == _put_events_answered() - answered
    assert all(len(call["eventList"]) <= 10 for call in calls)


def _put_events_answered() -> float:
    labels = {"operation": "PutEvents", "outcome": "ok"}
    return REGISTRY.get_sample_value("mgrecs_engine_operations_total", labels) or 0.0
