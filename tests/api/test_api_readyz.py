"""`/readyz`: ready while the database answers, whatever the cache's age (a stale or missing
generation still lets the API answer: stale lists, real time, popularity); `/healthz` asks
the process only."""

import asyncpg
import httpx
import pytest

from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.settings import Settings
from support.helpers import asgi_client

READY = {"status": "ok", "checks": {"database": "ok"}}


async def _probe(settings: Settings, path: str = "/readyz") -> httpx.Response:
    async with asgi_client(create_app(settings)) as client:
        return await client.get(path)


@pytest.mark.parametrize(
    "cache_state",
    [
        "UPDATE cache_generations SET completed_at = now() - interval '1 hour'",
        "UPDATE cache_generations SET completed_at = now() - interval '13 hours'",  # 2 TTLs+
        "UPDATE cache_generations SET state = 'retired'",  # invalidated: none is current
    ],
)
async def test_ready_whatever_the_cache_age(
    settings: Settings, pool: asyncpg.Pool, cache_state: str
) -> None:
    await pool.execute(cache_state)
    response = await _probe(settings)
    assert response.status_code == 200
    assert response.json() == READY


async def test_not_ready_when_the_database_is_down_yet_alive(settings: Settings) -> None:
    down = settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/none"}
    )
    response = await _probe(down)
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "detail": "database: unreachable",
        "checks": {"database": "unreachable"},
    }
    alive = await _probe(down, "/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}


async def test_readyz_needs_no_key(settings: Settings) -> None:
    settings.api_read_keys = "secret"
    response = await _probe(settings)
    assert response.status_code == 200
