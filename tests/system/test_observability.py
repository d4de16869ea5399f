"""Observability: the workers' `/healthz`, `/readyz` and `/metrics` (run as processes, as
deployed), a request id followed from `POST /v1/orders` through Kafka to the tracker's JSON
log, and the metrics operators alert on."""

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from mgrecs.api.app import create_app as create_api
from mgrecs.batch.steps import Steps
from mgrecs.cli.embedded import free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common import topics
from mgrecs.common.kafka import ensure_topics, make_producer
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import create_app as create_engine
from mgrecs.ingest.app import create_app as create_ingest
from support.helpers import asgi_client, eventually, serve

Start = Callable[..., tuple[ServiceProcess, str]]


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Start]:
    """Start a worker's console script with the test's settings (`env` overrides some) and
    its probe port; returns the process and the probes' base URL."""
    started: list[ServiceProcess] = []

    def start(*command: str, env: dict[str, str] | None = None) -> tuple[ServiceProcess, str]:
        port = str(free_port())
        process = ServiceProcess(
            command[0],
            list(command),
            {
                "MGRECS_DATABASE_URL": settings.database_url,
                "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
                "MGRECS_ARTIFACT_DIR": settings.artifact_dir,
                "MGRECS_LOG_LEVEL": "INFO",
                "MGRECS_LOG_JSON": "true",
                "MGRECS_TRACKER_METRICS_PORT": port,
                "MGRECS_BATCH_METRICS_PORT": port,
                "MGRECS_SCHEDULER_METRICS_PORT": port,
                **(env or {}),
            },
            tmp_path / f"{command[0]}-{len(started)}.log",
        )
        process.start()
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{url}/healthz", process)
        return process, url

    yield start
    stop_all(started)


async def ready(url: str) -> bool:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{url}/readyz")).status_code == 200


async def scrape(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    return response.text


def json_lines(process: ServiceProcess) -> list[dict[str, object]]:
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


ORDER = {
    "order_id": "o-obs-1",
    "ordered_at": "2026-11-20T10:15:00Z",
    "customer": {"customer_id": "c-obs-1", "region": "north", "city": "Oslo"},
    "lines": [{"product_id": "p-7", "quantity": 2, "price": "9.90"}],
}


async def test_a_request_id_follows_an_order_to_the_trackers_log(
    settings: Settings, worker: Start
) -> None:
    await ensure_topics(settings)
    tracker, url = await asyncio.to_thread(worker, "mgrecs-tracker", "--sink", "db")
    await eventually(lambda: ready(url), timeout=60)
    async with (
        serve(create_ingest(settings), settings.ingest_port) as ingest,
        httpx.AsyncClient(base_url=ingest) as client,
    ):
        response = await client.post(
            "/v1/orders", json={"orders": [ORDER]}, headers={"X-Request-ID": "req-obs-42"}
        )
        assert response.status_code == 202
        assert response.headers["X-Request-ID"] == "req-obs-42"
        assert (await client.get("/readyz")).status_code == 200
        ingest_metrics = (await client.get("/metrics")).text
    assert 'mgrecs_ingest_request_seconds_count{method="POST",route="/v1/orders"}' in ingest_metrics

    def handled() -> list[dict[str, object]]:
        return [
            line
            for line in json_lines(tracker)
            if line.get("event") == "batch_handled" and "req-obs-42" in line.get("message_ids", [])  # type: ignore[operator]
        ]

    lines = await eventually(lambda: asyncio.to_thread(handled), timeout=60)
    assert lines[0]["sink"] == "db" and lines[0]["records"] == 1
    assert "c-obs-1" not in json.dumps(lines)  # no customer data in the log

    metrics = await scrape(url)
    assert 'mgrecs_tracker_written_total{sink="db"} 1.0' in metrics
    assert 'mgrecs_tracker_consumer_lag{sink="db"}' in metrics
    assert "mgrecs_tracker_batch_seconds_bucket" in metrics


async def test_a_dead_letter_carries_its_message_id_and_is_counted(
    settings: Settings, worker: Start
) -> None:
    await ensure_topics(settings)
    tracker, url = await asyncio.to_thread(worker, "mgrecs-tracker", "--sink", "db")
    producer = make_producer(settings)
    await producer.start()
    try:
        topic = topics.topic(topics.ORDERS, settings)
        sent = await producer.send_and_wait(topic, b"not json", key=b"k")
    finally:
        await producer.stop()

    def letters() -> list[dict[str, object]]:
        return [line for line in json_lines(tracker) if line.get("event") == "dead_letter"]

    lines = await eventually(lambda: asyncio.to_thread(letters), timeout=60)
    assert lines[0]["message_id"] == f"{topic}/{sent.partition}/{sent.offset}"
    dlq = topics.topic(topics.ORDERS_DLQ, settings)
    assert f'mgrecs_dead_letters_total{{topic="{dlq}"}} 1.0' in await scrape(url)


async def test_the_tracker_is_alive_but_not_ready_without_its_database(
    settings: Settings, worker: Start
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    _, url = await asyncio.to_thread(
        worker, "mgrecs-tracker", "--sink", "db", env={"MGRECS_DATABASE_URL": closed}
    )
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/healthz")).json() == {"status": "ok"}
        response = await client.get(f"{url}/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["db"] != "ok"


async def test_the_batch_worker_probes_and_counts_dead_ticks(
    settings: Settings, worker: Start
) -> None:
    await ensure_topics(settings)
    _, url = await asyncio.to_thread(worker, "mgrecs-batch")
    await eventually(lambda: ready(url), timeout=60)
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{url}/readyz")).json()
    assert body == {"status": "ok", "checks": {"kafka": "ok", "database": "ok"}}
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topics.topic(topics.SCHEDULE_TICKS, settings), b"{}")
    finally:
        await producer.stop()
    dlq = topics.topic(topics.SCHEDULE_TICKS_DLQ, settings)
    counted = f'mgrecs_dead_letters_total{{topic="{dlq}"}} 1.0'
    await eventually(lambda: _contains(url, counted), timeout=60)


async def _contains(url: str, text: str) -> bool:
    return text in await scrape(url)


async def test_the_scheduler_probes(settings: Settings, worker: Start) -> None:
    _, url = await asyncio.to_thread(worker, "mgrecs-scheduler")
    await eventually(lambda: ready(url), timeout=60)
    assert "# TYPE mgrecs_scheduler_ticks_published_total counter" in await scrape(url)


async def test_the_api_echoes_request_ids_and_reports_cache_age_and_model(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "UPDATE cache_generations SET completed_at = now() - interval '1 hour',"
        " model_version = 'v-obs' WHERE state = 'current'"
    )
    async with asgi_client(create_api(settings)) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "req-api-1"})
        assert response.headers["X-Request-ID"] == "req-api-1"
        fresh = (await client.get("/healthz")).headers["X-Request-ID"]
        assert len(fresh) == 32  # a new uuid when the caller sent none
        injected = await client.get("/healthz", headers={"X-Request-ID": "a b\nc"})
        assert injected.headers["X-Request-ID"] != "a b\nc"
        metrics = (await client.get("/metrics")).text
    assert 'mgrecs_model_version_info{service="api",version="v-obs"} 1.0' in metrics
    age = REGISTRY.get_sample_value("mgrecs_cache_age_seconds")
    assert age is not None and 3500 < age < 3700
    assert 'mgrecs_api_request_seconds_count{method="GET",route="/healthz"}' in metrics


async def test_the_engine_is_ready_with_its_database_and_times_requests(
    settings: Settings,
) -> None:
    async with asgi_client(create_engine(settings)) as client:
        response = await client.get("/readyz", headers={"X-Request-ID": "req-engine-1"})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == "req-engine-1"
        metrics = (await client.get("/metrics")).text
    assert 'mgrecs_engine_request_seconds_count{method="GET",route="/readyz"}' in metrics


async def test_job_steps_are_timed_by_kind(pool: asyncpg.Pool) -> None:
    def count() -> float:
        sample = REGISTRY.get_sample_value(
            "mgrecs_batch_step_seconds_count", {"kind": "retrain", "step": "observe"}
        )
        return sample or 0.0

    before = count()
    async with Steps(pool, None, "retrain").step("observe"):
        pass
    assert count() == before + 1
