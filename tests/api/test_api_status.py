"""`GET /v1/status`: the operator's overview, admin key only, from the real database, the
API's own answer counters and the real broker (or what went wrong reaching it)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from mgrecs.api.app import create_app
from mgrecs.api.consumer_lag import LAGGED
from mgrecs.cli.embedded import free_port
from mgrecs.common import topics
from mgrecs.common.quality import Coverage, QualityReport
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.store import jobs
from mgrecs.store.cache import USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from mgrecs.store.reports import save_drift, save_report
from mgrecs.tracker.db_sink import DbSink
from mgrecs.tracker.events_sink import EventsSink
from mgrecs.tracker.served_sink import ServedSink
from support.helpers import asgi_client

ADMIN = {"X-API-Key": "admin-secret"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings.api_admin_keys = "admin-secret"
    settings.api_read_keys = "read-secret"
    async with asgi_client(create_app(settings)) as http:
        yield http


async def status(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/status", headers=ADMIN)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


V1_METRICS: dict[str, Any] = {"ndcg@10": 0.2}  # an older row: flat figures
V2_METRICS: dict[str, Any] = {  # as retrain stores them: the chosen recipe on validation
    "recipe": "cooccurrence",
    "validation": {
        "chosen": {"precision@10": 0.1, "recall@10": 0.3, "ndcg@10": 0.25, "coverage": 0.5},
        "popularity": {"precision@10": 0.05, "ndcg@10": 0.12},
    },
}


@pytest.fixture
async def history(pool: asyncpg.Pool) -> None:
    """Two model versions, a quality report, two drift reports, two jobs with steps."""
    now = datetime.now(UTC)
    for version, days_ago, size, metrics, active, decision in (
        ("v1", 2, (10, 5, 40), V1_METRICS, False, "replaced"),
        ("v2", 1, (12, 6, 50), V2_METRICS, True, "better than v1"),
    ):
        model = ModelVersion(
            version,
            RECIPE,
            f"file:///{version}",
            *size,
            metrics,
            now - timedelta(days=days_ago),
        )
        await register(pool, model, promote=active, reason=decision)
    await save_report(
        pool,
        QualityReport(
            source="retrain",
            kind="export",
            lines=100,
            bad_lines=9,
            bad_rate=0.09,
            max_bad_rate=0.05,
            passed=False,
            reason="9% bad lines, over 5%",
            checks={},
            coverage=Coverage(),
        ),
    )
    await save_drift(pool, "v1", False, {"flags": []})
    await save_drift(pool, "v2", True, {"flags": ["unseen customers: 40% of recent order lines"]})
    await jobs.start(pool, ScheduleTick(kind="retrain", tick_id="t-old"))
    await jobs.append_step(pool, "t-old", {"step": "export", "seconds": 1.5, "status": "ok"})
    await jobs.finish(pool, "t-old", {})
    await jobs.start(pool, ScheduleTick(kind="infer", tick_id="t-new"))
    await jobs.append_step(pool, "t-new", {"step": "infer", "seconds": 0.2, "status": "failed"})


async def test_status_reports_models_quality_drift_and_jobs(
    history: None, client: httpx.AsyncClient
) -> None:
    body = await status(client)
    assert [(m["version"], m["active"], m["metrics"]) for m in body["models"]] == [
        ("v2", True, V2_METRICS),
        ("v1", False, V1_METRICS),
    ]
    # The headline figures the dashboard draws, whichever shape the metrics were stored in.
    assert [m["figures"] for m in body["models"]] == [
        {"precision@10": 0.1, "recall@10": 0.3, "ndcg@10": 0.25, "coverage": 0.5},
        {"ndcg@10": 0.2},
    ]
    assert body["models"][0]["decision"] == "better than v1"
    quality = body["quality"]
    assert (quality["source"], quality["passed"]) == ("retrain", False)
    assert quality["report"]["reason"] == "9% bad lines, over 5%"
    drift = body["drift"]
    assert (drift["model_version"], drift["drifted"]) == ("v2", True)
    assert drift["flags"] == ["unseen customers: 40% of recent order lines"]
    assert [(j["tick_id"], j["finished_at"] is None, j["steps"]) for j in body["jobs"]] == [
        ("t-new", True, [{"step": "infer", "seconds": 0.2, "status": "failed"}]),
        ("t-old", False, [{"step": "export", "seconds": 1.5, "status": "ok"}]),
    ]


async def test_status_of_an_empty_system(pool: asyncpg.Pool, client: httpx.AsyncClient) -> None:
    await pool.execute("UPDATE cache_generations SET state = 'retired'")
    body = await status(client)
    assert (body["models"], body["quality"], body["drift"], body["jobs"]) == ([], None, None, [])
    cache = body["cache"]
    assert (cache["generation"], cache["age_seconds"], cache["fresh"]) == (None, None, False)


async def test_cache_freshness_against_the_ttl(
    pool: asyncpg.Pool, client: httpx.AsyncClient, settings: Settings
) -> None:
    fresh = (await status(client))["cache"]
    await pool.execute("UPDATE cache_generations SET completed_at = now() - interval '7 hours'")
    stale = (await status(client))["cache"]
    assert (fresh["generation"], fresh["fresh"], fresh["ttl_hours"]) == (1, True, 6.0)
    assert fresh["age_seconds"] < 6 * 3600
    assert (stale["generation"], stale["fresh"]) == (1, False)
    assert stale["age_seconds"] >= 7 * 3600
    assert [table["table"] for table in stale["tables"]] == [
        "offline_user_recommendations",
        "offline_similar_items",
    ]
    assert all(table["age_seconds"] >= 7 * 3600 for table in stale["tables"])


async def test_hit_rate_counts_the_user_endpoint_answers(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    """The counters are this process's (other tests add to them): compare before and after.
    c1 has a cached list; c2 none, and no engine runs, so it gets regional popularity."""
    await insert_customers(pool, [StoredCustomer("c1", "north"), StoredCustomer("c2", "north")])
    await put_current(
        pool,
        USERS,
        "c1",
        [{"product_id": "p1", "score": 0.5}],
        datetime.now(UTC).replace(tzinfo=None),
    )
    before = (await status(client))["cache"]["answers"]
    read = {"X-API-Key": "read-secret"}
    sources = [
        (await client.get(f"/v1/users/{user}/recommendations", headers=read)).json()["source"]
        for user in ("c1", "c1", "c2")
    ]
    after = (await status(client))["cache"]
    assert sources == ["cache", "cache", "popular"]
    delta = {source: after["answers"][source] - before[source] for source in before}
    assert delta == {"cache": 2, "realtime": 0, "popular": 1}
    total = sum(after["answers"].values())
    assert after["hit_rate"] == round(after["answers"]["cache"] / total, 4)


async def test_consumer_lag_of_the_tracker_groups(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Five orders on partition 0; the db sink's group committed 2 of them, the events
    sink's group never committed: 3 and 5 behind. One dead letter on orders.dlq."""
    topic = topics.topic(topics.ORDERS, settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, f"order {n}".encode(), partition=0)
        dlq = topics.topic(topics.ORDERS_DLQ, settings)
        await producer.send_and_wait(dlq, b"not an order")
    finally:
        await producer.stop()
    db_group = f"{settings.topic_prefix}mgrecs-tracker-db"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=db_group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: OffsetAndMetadata(2, "")})
    finally:
        await consumer.stop()

    lag = (await status(client))["consumer_lag"]
    assert lag == {
        "groups": [
            {"group": "mgrecs-tracker-db", "lag": 3, "committed": True},
            {"group": "mgrecs-tracker-events", "lag": 5, "committed": False},
            {"group": "mgrecs-tracker-served", "lag": 0, "committed": False},
        ],
        "dead_letters": {
            "orders.dlq": 1,
            "orders.events.dlq": 0,
            "schedule-ticks.dlq": 0,
            "infer-shards.dlq": 0,
            "feedback.dlq": 0,
            "products.dlq": 0,
            "served.dlq": 0,
        },
        "error": None,
    }


async def test_an_unreachable_broker_is_reported_not_failed(settings: Settings) -> None:
    settings.api_admin_keys = "admin-secret"
    settings.kafka_bootstrap = f"127.0.0.1:{free_port()}"
    async with asgi_client(create_app(settings)) as http:
        body = await status(http)
    assert body["consumer_lag"]["groups"] == []
    assert body["consumer_lag"]["dead_letters"] == {}
    assert body["consumer_lag"]["error"].startswith(
        f"broker {settings.kafka_bootstrap} unreachable"
    )
    assert body["cache"]["generation"] == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 401), ({"X-API-Key": "read-secret"}, 401), ({"Authorization": "Bearer nope"}, 401)],
)
async def test_status_needs_the_admin_key(
    client: httpx.AsyncClient, headers: dict[str, str], code: int
) -> None:
    response = await client.get("/v1/status", headers=headers)
    assert response.status_code == code
    assert "API key" in response.json()["detail"]


async def test_status_is_disabled_without_admin_keys(settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as http:
        response = await http.get("/v1/status", headers=ADMIN)
    assert response.status_code == 403


def test_the_lag_is_measured_for_the_tracker_sinks_groups() -> None:
    assert {DbSink.group, EventsSink.group} == set(topics.TRACKER_ORDER_GROUPS)
    assert (topics.SERVED, (ServedSink.group,)) in LAGGED


async def test_openapi_documents_the_status(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/status" in spec["paths"]
    example = spec["components"]["schemas"]["Status"]["examples"][0]
    assert {"cache", "models", "drift", "jobs", "consumer_lag"} <= set(example)
