"""Engine replicas answer the same: what one replica's PutEvents accepts reaches every replica
through topic `engine-events`, a restarted replica reads it back, and a newer model drops the
history it was trained on. Each replica is an app with its own state on its own port."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from botocore.exceptions import ClientError

from mgrecs.cli.embedded import EmbeddedBroker, free_port
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.personalize import MAX_BULK_EVENTS
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app
from mgrecs.engine_service.feed import MESSAGE_EVENTS
from mgrecs.tracker.bulk import BulkClient, bulks
from support.engine import bundle_lines, item_ids, put_purchase, recommend, register_model
from support.helpers import engine_stats, eventually, ready, serve


@pytest.fixture
def engine_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"engine_model_poll_seconds": 0.2})


def replica(settings: Settings) -> Settings:
    """Another replica's settings: the same broker, topics and database, its own port."""
    port = free_port()
    return settings.model_copy(
        update={"engine_port": port, "personalize_endpoint_url": f"http://127.0.0.1:{port}"}
    )


async def first_item(settings: Settings, user_id: str) -> str | None:
    found = item_ids(await recommend(settings, userId=user_id, numResults=3))
    return found[0] if found else None


async def test_put_events_to_one_replica_changes_the_answer_of_another(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    await register_model(pool, engine_settings, "v1", bundle_lines())
    a, b = engine_settings, replica(engine_settings)
    async with (
        serve(create_app(a), a.engine_port) as url_a,
        serve(create_app(b), b.engine_port) as url_b,
    ):
        await eventually(lambda: ready(url_b))
        assert await first_item(b, "newcomer") == "X"  # unknown to both: popularity
        await put_purchase(a, "newcomer", "A", "evt-1")

        async def reflected() -> dict[str, Any] | None:
            answer = await recommend(b, userId="newcomer", numResults=3)
            return answer if item_ids(answer)[0] == "B" else None

        answer = await eventually(reflected)
        counts_a, counts_b = await engine_stats(url_a), await engine_stats(url_b)
    assert answer["itemList"][0]["reason"] == ["bought A"]
    assert "A" not in item_ids(answer)
    assert (counts_a["events_received"], counts_a["events_followed"]) == (1, 0)  # its own: once
    assert (counts_b["events_received"], counts_b["events_followed"]) == (0, 1)


async def test_a_restarted_replica_rebuilds_its_history_from_the_topic_before_it_is_ready(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    """Ready means caught up: right after `/readyz` says so, every earlier purchase shows."""
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await register_model(pool, engine_settings, "v1", bundle_lines(), trained_at=an_hour_ago)
    users = [f"u{n}" for n in range(40)]
    async with serve(create_app(engine_settings), engine_settings.engine_port):
        for n, user in enumerate(users):
            await put_purchase(engine_settings, user, "A", f"evt-{n}")
    async with serve(create_app(engine_settings), engine_settings.engine_port) as url:
        await eventually(lambda: ready(url), interval=0.01)
        firsts = [await first_item(engine_settings, user) for user in users]
        counts = await engine_stats(url)
    assert firsts == ["B"] * len(users)
    assert (counts["events_received"], counts["events_followed"]) == (0, len(users))


async def test_without_the_broker_put_events_is_refused_as_retryable_and_records_nothing(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    """503 ServiceUnavailable: the tracker waits and sends the events again."""
    await register_model(pool, engine_settings, "v1", bundle_lines())
    down = engine_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    async with serve(create_app(down), down.engine_port) as url:
        async with httpx.AsyncClient() as http:
            readiness = await http.get(f"{url}/readyz")
        with pytest.raises(ClientError) as refused:
            await put_purchase(down, "newcomer", "A", "evt-1")
        answer = await first_item(down, "newcomer")
        counts = await engine_stats(url)
    assert readiness.status_code == 503 and "broker" in readiness.json()["events"]
    error = refused.value.response
    assert error["Error"]["Code"] == "ServiceUnavailable"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert answer == "X"  # the model answers on; the refused purchase is nowhere
    assert counts["events_received"] == 0


async def test_a_newer_model_drops_the_history_it_was_trained_on(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    """Memory stays bounded: events accepted before the newly served model's training leave
    the history (that model learnt them from PostgreSQL); later ones stay. A replica started
    afterwards holds the same."""
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    settings = engine_settings
    await register_model(pool, settings, "v1", bundle_lines(), trained_at=an_hour_ago)
    async with serve(create_app(settings), settings.engine_port) as url:
        await put_purchase(settings, "early", "A", "evt-early")
        assert await first_item(settings, "early") == "B"
        await register_model(pool, settings, "v2", bundle_lines(), trained_at=datetime.now(UTC))

        async def swapped() -> bool:
            return (await engine_stats(url))["model_version"] == "v2"

        await eventually(swapped)
        pruned = await first_item(settings, "early")
        await put_purchase(settings, "late", "A", "evt-late")
        late = await first_item(settings, "late")
        counts = await engine_stats(url)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
    assert pruned == "X"  # v2 never saw "early" (bundle_lines): popularity again
    assert late == "B"
    assert counts["users_with_events"] == 1
    assert "mgrecs_engine_pruned_lines_total 1.0" in metrics
    restarted = replica(settings)
    async with serve(create_app(restarted), restarted.engine_port) as url:
        await eventually(lambda: ready(url))
        again = [await first_item(restarted, user) for user in ("early", "late")]
    assert again == ["X", "B"]


async def test_a_broker_outage_refuses_put_events_and_the_retry_counts_once(
    engine_settings: Settings, pool: asyncpg.Pool, durable_broker: EmbeddedBroker
) -> None:
    """While the broker is down PutEvents answers 503 (the tracker sends the call again); the
    call sent again once it is back counts once on every replica, even if the refused copy
    reached the topic after all."""
    a = engine_settings.model_copy(
        update={
            "kafka_bootstrap": durable_broker.bootstrap,
            "topic_prefix": f"o{uuid.uuid4().hex[:8]}-",
            "engine_publish_timeout_seconds": 2.0,
        }
    )
    b = replica(a)
    await ensure_topics(a)
    await register_model(pool, a, "v1", bundle_lines())
    async with (
        serve(create_app(a), a.engine_port) as url_a,
        serve(create_app(b), b.engine_port) as url_b,
    ):
        await put_purchase(a, "before", "A", "evt-before")
        await asyncio.to_thread(durable_broker.stop)
        with pytest.raises(ClientError) as refused:
            await put_purchase(a, "during", "A", "evt-during")
        await asyncio.to_thread(durable_broker.start)

        async def sent_again() -> bool:
            try:
                await put_purchase(a, "during", "A", "evt-during")
            except ClientError:
                return False
            return True

        await eventually(sent_again, timeout=120, interval=1.0)

        async def both_on_b() -> bool:
            counts = await engine_stats(url_b)
            return bool(counts["events_followed"] >= 2)

        await eventually(both_on_b, timeout=60)
        await asyncio.sleep(1)  # a second copy of the refused call would be folded by now
        counts_a, counts_b = await engine_stats(url_a), await engine_stats(url_b)
        answer = await first_item(b, "during")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert answer == "B"
    assert counts_b["events_followed"] == 2 and counts_b["users_with_events"] == 2
    assert counts_a["events_received"] + counts_a["events_followed"] == 2


async def test_a_full_bulk_reaches_another_replica_whole(
    engine_settings: Settings, pool: asyncpg.Pool
) -> None:
    """A bulk of `MAX_BULK_EVENTS` events goes out in several `engine-events` messages (one
    would pass the broker's message limit); the other replica holds every event."""
    await register_model(pool, engine_settings, "v1", bundle_lines())
    calls = [
        {
            "trackingId": engine_settings.tracking_id,
            "userId": f"bulk-{n}",
            "sessionId": f"bulk-{n}",
            "eventList": [
                {
                    "eventId": f"order-{n}#{line}",
                    "eventType": "purchase",
                    "itemId": f"P{line}",
                    "sentAt": datetime.now(UTC),
                }
                for line in range(10)
            ],
        }
        for n in range(MAX_BULK_EVENTS // 10)
    ]
    (bulk,) = bulks(calls)
    assert len(bulk.body) > MESSAGE_EVENTS * 100  # more than one message's worth
    a, b = engine_settings, replica(engine_settings)
    async with (
        serve(create_app(a), a.engine_port),
        serve(create_app(b), b.engine_port) as url_b,
    ):
        await eventually(lambda: ready(url_b))
        async with BulkClient.session() as session:
            await BulkClient(a, session).send(bulk)

        async def all_followed() -> dict[str, Any] | None:
            counts = await engine_stats(url_b)
            return counts if counts["events_followed"] == MAX_BULK_EVENTS else None

        counts = await eventually(all_followed)
    assert counts["users_with_events"] == len(calls)
