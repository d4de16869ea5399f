"""`mgrecs sync`, run as an operator would, against the fake company API on a real port.

Synchronous because the command runs its own event loop; the fake API runs in a thread.
"""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from mgrecs.cli.embedded import free_port
from mgrecs.cli.main import app
from mgrecs.cli.processes import ServiceProcess, wait_healthy
from mgrecs.common import topics
from mgrecs.common.schemas import OrderEvent
from mgrecs.common.settings import Settings, get_settings
from mgrecs.ingest.fake_company_api import (
    FakeCompanyApi,
    create_fake_api,
    generate_orders,
    generate_products,
)
from support.helpers import read_topic
from support.paths import REPO_ROOT

runner = CliRunner()
MAPPING_FILE = REPO_ROOT / "deploy" / "company-api-mapping.json"


@pytest.fixture
def fake_api() -> Iterator[tuple[FakeCompanyApi, str]]:
    api = FakeCompanyApi(
        generate_orders(35, seed=3), auth_kind="api-key", products=generate_products(12)
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_fake_api(api), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "fake API did not start"
        time.sleep(0.05)
    yield api, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def sync_env(
    settings: Settings, fake_api: tuple[FakeCompanyApi, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    api, url = fake_api
    env = {
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TOPIC_PREFIX": settings.topic_prefix,
        "CONNECTOR_BASE_URL": url,
        "CONNECTOR_AUTH": "api-key",
        "CONNECTOR_TOKEN": api.token,
        "CONNECTOR_PAGINATION": "page",
        "CONNECTOR_PAGE_SIZE": "8",
        "CONNECTOR_REQUESTS_PER_SECOND": "0",
        "CONNECTOR_MAPPING_FILE": str(MAPPING_FILE),
    }
    for name, value in env.items():
        monkeypatch.setenv(f"MGRECS_{name}", value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_sync_command_publishes_every_order(
    sync_env: Settings, fake_api: tuple[FakeCompanyApi, str]
) -> None:
    result = runner.invoke(app, ["sync"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "35 orders published, 0 dead-lettered" in result.output
    assert "12 products published, 0 dead-lettered" in result.output
    assert "data quality passed" in result.output
    topic = topics.topic(topics.ORDERS, sync_env)
    records = asyncio.run(read_topic(sync_env.kafka_bootstrap, topic))
    ids = sorted(OrderEvent.model_validate_json(record.value).order_id for record in records)
    assert ids == sorted(order["id"] for order in fake_api[0].orders)


def test_sync_command_refuses_a_bad_mapping_file(
    sync_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = json.loads(MAPPING_FILE.read_text())
    raw["customer"]["shoe_size"] = "customer.shoes"
    bad = tmp_path / "mapping.json"
    bad.write_text(json.dumps(raw))
    monkeypatch.setenv("MGRECS_CONNECTOR_MAPPING_FILE", str(bad))
    get_settings.cache_clear()
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "customer.shoe_size" in result.output


def test_sync_command_exits_1_when_the_data_quality_check_fails(
    sync_env: Settings, fake_api: tuple[FakeCompanyApi, str]
) -> None:
    api = fake_api[0]
    api.faults.malformed_ids = {order["id"] for order in api.orders[:5]}  # 5 of 35: 14 %
    result = runner.invoke(app, ["sync"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "30 orders published, 5 dead-lettered" in result.output
    assert "data quality FAILED" in result.output and "above the limit" in result.output


def test_sync_follow_runs_the_connector_service_until_sigterm(
    sync_env: Settings, fake_api: tuple[FakeCompanyApi, str], tmp_path: Path
) -> None:
    """`mgrecs sync --follow` is `mgrecs-connector` in the foreground: it takes the puller
    lock, serves the probes, pulls every order, and exits 0 on SIGTERM."""
    port = free_port()
    env = {"MGRECS_CONNECTOR_METRICS_PORT": str(port), "MGRECS_CONNECTOR_POLL_SECONDS": "0.5"}
    follow = ServiceProcess("sync", ["mgrecs", "sync", "--follow"], env, tmp_path / "sync.log")
    follow.start()
    try:
        wait_healthy(f"http://127.0.0.1:{port}/readyz", follow)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "mgrecs_connector_leader 1.0" in metrics
        topic = topics.topic(topics.ORDERS, sync_env)
        deadline = time.monotonic() + 60
        while len(asyncio.run(read_topic(sync_env.kafka_bootstrap, topic))) < 35:
            assert time.monotonic() < deadline, follow.log_tail()
            time.sleep(0.5)
    finally:
        follow.terminate()
        follow.wait(timeout=30)
    assert follow.process is not None and follow.process.returncode == 0, follow.log_tail()
