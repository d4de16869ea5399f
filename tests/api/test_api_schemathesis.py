"""Property-based run of the whole OpenAPI document (schemathesis): no operation answers
5xx or breaks its own schema, whatever the generated input.

The API runs on a real port over a real database holding a small shop (a cached customer,
one without a cache row, products, orders, a similar-items row), with the admin key sent on
every request so the admin operations are exercised too. The engine is not running: the
real-time paths take their fallbacks.
"""

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.settings import Settings
from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.customers import StoredCustomer, insert_customers
from mgrecs.store.databases import create_database, drop_database
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.products import StoredProduct, insert_products

ADMIN = {"X-API-Key": "admin-secret"}
MAX_EXAMPLES = 25
"""Per operation: keeps the whole run well under a minute on the shared 2-core machine."""


async def _seed(url: str) -> None:
    """north: c1 (cached) and c2 (no cache row), both recently active; south: c9."""
    pool = await create_pool(url)
    try:
        await insert_products(
            pool,
            [
                StoredProduct(f"p{i}", f"product {i}", "dairy" if i % 2 else "bakery")
                for i in range(1, 6)
            ],
        )
        regions = {"c1": "north", "c2": "north", "c9": "south"}
        await insert_customers(pool, [StoredCustomer(c, r) for c, r in regions.items()])
        now = datetime.now(UTC)
        bought = [("c1", ["p1", "p2"]), ("c2", ["p1", "p3"]), ("c9", ["p4"])]
        await insert_orders(
            pool,
            [
                StoredOrder(
                    f"o{n}",
                    customer,
                    now - timedelta(days=n + 1),
                    [StoredLine(line, pid) for line, pid in enumerate(products)],
                )
                for n, (customer, products) in enumerate(bought)
            ],
        )
        await put_current(
            pool,
            USERS,
            "c1",
            [{"product_id": "p3", "score": 0.9, "reason": "bought with p1"}, {"product_id": "p4"}],
        )
        await put_current(pool, SIMILAR, "p1", [{"product_id": "p3", "score": 0.8}])
    finally:
        await pool.close()


class _Server:
    """uvicorn in a thread of its own (its own event loop), so the synchronous schemathesis
    calls reach the app over a real socket."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def __aenter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API did not start")
            await asyncio.sleep(0.05)
        return f"http://127.0.0.1:{self.server.config.port}"

    async def __aexit__(self, *_: object) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 10)


@pytest.fixture(scope="module")
async def api_url(
    postgres_server_url: str,
    template_database: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    name = f"mgrecs_t_{uuid.uuid4().hex[:12]}"
    template = urlsplit(template_database).path.lstrip("/")  # also ?host=/socket/dir URLs
    url = await create_database(postgres_server_url, name, template=template)
    try:
        await _seed(url)
        api_settings = Settings(
            database_url=url,
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=f"t{uuid.uuid4().hex[:8]}-",
            artifact_dir=str(Path(tmp_path_factory.mktemp("artifacts"))),
            api_port=free_port(),
            engine_port=free_port(),
            api_admin_keys=ADMIN["X-API-Key"],
            log_json=False,
        )
        api_settings.personalize_endpoint_url = f"http://127.0.0.1:{api_settings.engine_port}"
        await ensure_topics(api_settings)
        async with _Server(api_settings) as base:
            yield base
    finally:
        await drop_database(postgres_server_url, name)


schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
"""The document the app builds (the same one it serves at /openapi.json)."""


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_answers_match_the_schema(
    api_url: str, case: schemathesis.Case
) -> None:
    case.call_and_validate(
        base_url=api_url,
        headers=ADMIN,
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
