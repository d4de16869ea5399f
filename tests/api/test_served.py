"""What the api answered, recorded on topic `served` (issue 20, item 1), on the real broker
and database: every answer of every endpoint with its fields, through the tracker's served
sink into table `served`; with the broker down answers are served and the records dropped
and counted; a full queue drops and counts."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from prometheus_client import REGISTRY

from mgrecs.api.app import create_app
from mgrecs.api.schemas.shared import RecommendedItem
from mgrecs.api.served_recorder import ServedRecorder
from mgrecs.common import topics
from mgrecs.common.kafka import partition_of, partitions_of
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings
from mgrecs.store.products import StoredProduct, insert_products
from mgrecs.tracker.served_sink import ServedSink
from support.experiments import EXPERIMENT
from support.helpers import asgi_client, eventually, read_topic, running
from support.shop import insert_three_customers

ADMIN = {"X-API-Key": "admin-secret"}


async def shop(pool: asyncpg.Pool) -> None:
    """p1..p8; c1 (north) with a cached list p1..p6, c2 (north) without, c9 (south); similar
    items of p1: p2..p6."""
    await insert_products(
        pool, [StoredProduct(f"p{n}", f"product {n}", "tea", 10.0 * n) for n in range(1, 9)]
    )
    await insert_three_customers(pool)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dropped(reason: str) -> float:
    return counted("mgrecs_served_dropped_total", reason=reason)


async def on_topic(settings: Settings) -> list[ServedList]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.SERVED, settings))
    return [ServedList.model_validate_json(record.value) for record in records]


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["product_id"] for item in response.json()["items"]]


async def test_every_answer_is_recorded_with_its_fields_and_lands_in_served(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await shop(pool)
    await pool.execute(
        "UPDATE cache_generations SET model_version = 'v-cache' WHERE state = 'current'"
    )
    settings.api_admin_keys = "admin-secret"
    settings.api_answer_cache_seconds = 0
    app = create_app(settings)
    async with asgi_client(app) as client:
        pin = await client.post(
            "/v1/admin/rules",
            json={"kind": "pin", "region": "north", "target": {"products": ["p8"]}, "slot": 2},
            headers=ADMIN,
        )
        promotion = await client.post(
            "/v1/admin/rules",
            json={"kind": "promotion", "target": {"products": ["p7"]}, "share": 0.2},
            headers=ADMIN,
        )
        pin_id, promotion_id = pin.json()["rule_id"], promotion.json()["rule_id"]
        await app.state.rules.refresh()
        answers: dict[str, list[str]] = {
            "user": ids(await client.get("/v1/users/c1/recommendations", params={"limit": 5})),
            "buy_again": ids(await client.get("/v1/users/c1/buy-again", params={"limit": 5})),
            "visitor": ids(await client.get("/v1/visitors/recommendations?region=south")),
            "region": ids(await client.get("/v1/regions/north/recommendations?limit=5")),
            "similar": ids(await client.get("/v1/products/p1/similar", params={"limit": 4})),
            "ranking": ids(
                await client.post("/v1/users/c9/rank", json={"product_ids": ["p1", "p5", "p7"]})
            ),
        }
        assert (await client.get("/v1/users/nobody/recommendations")).status_code == 404
        assert answers["user"][1] == "p8"  # the pin (north) applied
        recorded = await eventually(lambda: _all_of(on_topic(settings), len(answers)), timeout=20)

    by_endpoint = {served.endpoint: served for served in recorded}
    assert sorted(by_endpoint) == sorted(answers)  # one message each, the 404 not recorded
    for endpoint, products in answers.items():
        assert by_endpoint[endpoint].product_ids == products, endpoint
    user = by_endpoint["user"]
    assert (user.customer_id, user.region, user.source) == ("c1", "north", "cache")
    assert user.rule_ids == sorted([pin_id, promotion_id])  # in force in north
    assert by_endpoint["buy_again"].customer_id == "c1"
    assert by_endpoint["buy_again"].source.startswith("history")
    visitor = by_endpoint["visitor"]
    assert (visitor.customer_id, visitor.region, visitor.rule_ids) == (
        None,
        "south",
        [promotion_id],
    )
    region = by_endpoint["region"]
    assert (region.region, region.customer_id) == ("north", None)
    assert region.rule_ids == sorted([pin_id, promotion_id])
    similar = by_endpoint["similar"]
    assert (similar.product_id, similar.source, similar.rule_ids) == ("p1", "cache", [promotion_id])
    assert similar.model_version == "v-cache"  # the generation's, as the answer says
    ranking = by_endpoint["ranking"]
    assert (ranking.customer_id, ranking.region, ranking.source) == ("c9", "south", "popular")
    assert len({served.served_id for served in recorded}) == len(recorded)

    async with running(ServedSink(settings)):
        rows = await eventually(lambda: _rows(pool, len(answers)))
    stored = {row["served_id"]: row for row in rows}
    for served in recorded:
        row = stored[served.served_id]
        assert row["served_at"] == served.served_at
        assert list(row["product_ids"]) == served.product_ids
        assert (row["endpoint"], row["customer_id"], row["region"], row["source"]) == (
            served.endpoint,
            served.customer_id,
            served.region,
            served.source,
        )
        assert list(row["rule_ids"]) == served.rule_ids


async def _all_of(found: Any, count: int) -> list[ServedList] | None:
    messages: list[ServedList] = await found
    return messages if len(messages) >= count else None


async def _rows(pool: asyncpg.Pool, count: int) -> list[asyncpg.Record] | None:
    rows: list[asyncpg.Record] = await pool.fetch("SELECT * FROM served")
    return rows if len(rows) >= count else None


async def test_an_experiment_arm_and_model_version_are_recorded(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await shop(pool)
    settings.experiments = [EXPERIMENT]
    async with asgi_client(create_app(settings)) as client:
        answer = (await client.get("/v1/users/c1/recommendations")).json()
        (served,) = await eventually(lambda: _all_of(on_topic(settings), 1), timeout=20)
    assert answer["experiment"] == {"experiment_id": "ab1", "arm": "control"}
    assert (served.experiment_id, served.arm) == ("ab1", "control")
    assert served.model_version == answer["model_version"]
    assert served.source == answer["source"]


async def test_with_the_broker_down_answers_are_served_and_the_records_dropped_and_counted(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await shop(pool)
    down = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    before = dropped("broker")
    recorded = counted("mgrecs_served_recorded_total", endpoint="user")
    app = create_app(down)
    async with asgi_client(app) as client:
        for _ in range(40):
            assert ids(await client.get("/v1/users/c1/recommendations")) == [
                f"p{n}" for n in range(1, 7)
            ]
        # The answers did not wait for the broker: it has not been given up on yet, or was
        # given up on while they were served; either way each is counted once, as dropped.
        await eventually(lambda: _at_least(lambda: dropped("broker") - before, 40), timeout=30)
    assert dropped("broker") - before == 40
    assert counted("mgrecs_served_recorded_total", endpoint="user") == recorded


async def _at_least(value: Any, count: float) -> bool:
    return bool(value() >= count)


async def test_a_full_queue_drops_and_counts_and_what_is_queued_is_sent_at_close(
    settings: Settings,
) -> None:
    settings.served_queue_size = 3
    recorder = ServedRecorder(settings, lambda: datetime.now(UTC))
    before = dropped("queue_full")
    items = [
        RecommendedItem(product_id="p1", score=1.0),
        RecommendedItem(product_id="p2", score=0.5),
    ]
    for n in range(5):
        recorder.record("user", items, "cache", customer_id=f"c{n}")
    assert dropped("queue_full") - before == 2
    assert recorder.queued == 3
    await recorder.close()  # at shutdown, what is queued is sent
    recorded = await eventually(lambda: _all_of(on_topic(settings), 3), timeout=20)
    assert recorder.queued == 0
    assert sorted(served.customer_id or "" for served in recorded) == ["c0", "c1", "c2"]
    assert all(served.product_ids == ["p1", "p2"] for served in recorded)


async def test_a_batch_of_answers_is_one_record_each_keyed_and_in_order_per_key(
    settings: Settings,
) -> None:
    """A batch goes out as one record batch per partition: every answer is still its own
    record, keyed by customer (else region, else product) on the partition that key maps to,
    and one customer's answers stay in the order they were served."""
    settings.served_batch_size = 100
    settings.served_batch_seconds = 5  # all of them in one batch, sent at close
    recorder = ServedRecorder(settings, lambda: datetime.now(UTC))
    answers: list[tuple[str, str | None]] = []  # (first product, expected key)
    for n in range(60):
        first = f"p{n}"
        items = [RecommendedItem(product_id=first, score=1.0)]
        if n % 3 == 0:
            recorder.record("region", items, "aggregates", region="north")
            answers.append((first, "north"))
        elif n % 3 == 1:
            recorder.record("similar", items, "cache", product_id="p1")
            answers.append((first, "p1"))
        else:
            recorder.record("user", items, "cache", customer_id=f"c{n % 5}", region="south")
            answers.append((first, f"c{n % 5}"))
    assert recorder.queued == 60
    await recorder.close()
    topic = topics.topic(topics.SERVED, settings)
    records = await eventually(
        lambda: _records(read_topic(settings.kafka_bootstrap, topic), 60), timeout=20
    )

    partitions = await partitions_of(settings, topic)
    assert len(records) == 60
    by_key: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda record: (record.partition, record.offset)):
        served = ServedList.model_validate_json(record.value)
        key = record.key.decode()
        assert key == (served.customer_id or served.region or served.product_id)
        assert record.partition == partition_of(record.key, partitions)
        by_key.setdefault(key, []).append(served.product_ids[0])
    expected: dict[str, list[str]] = {}
    for first, key in answers:
        expected.setdefault(key, []).append(first)
    assert by_key == expected  # every answer once, each key's in the order served


async def _records(found: Any, count: int) -> list[Any] | None:
    records: list[Any] = await found
    return records if len(records) >= count else None


async def test_recording_off_records_nothing(settings: Settings, pool: asyncpg.Pool) -> None:
    await shop(pool)
    settings.served_recording = False
    async with asgi_client(create_app(settings)) as client:
        assert (await client.get("/v1/users/c1/recommendations")).status_code == 200
        await asyncio.sleep(settings.served_batch_seconds * 3)
    assert await on_topic(settings) == []
