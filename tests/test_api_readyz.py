"""`/readyz`: ready while the database answers and the current cache generation is within
`cache_ttl_hours`; otherwise 503 naming the failed check."""

import asyncpg
import httpx

from helpers import asgi_client
from mgrecs.api.app import create_app
from mgrecs.cli.embedded import free_port
from mgrecs.common.settings import Settings


async def _readyz(settings: Settings) -> httpx.Response:
    async with asgi_client(create_app(settings)) as client:
        return await client.get("/readyz")


async def test_ready_with_a_fresh_generation(settings: Settings, pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE cache_generations SET completed_at = now() - interval '1 hour'")
    response = await _readyz(settings)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


async def test_not_ready_when_the_generation_is_past_the_ttl(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await pool.execute("UPDATE cache_generations SET completed_at = now() - interval '7 hours'")
    response = await _readyz(settings)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["detail"] == ("cache: the current generation is 7.0 h old, over cache_ttl_hours 6")
    settings.cache_ttl_hours = 0  # never expires
    assert (await _readyz(settings)).status_code == 200


async def test_not_ready_without_a_current_generation(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await pool.execute("UPDATE cache_generations SET state = 'retired'")
    response = await _readyz(settings)
    assert response.status_code == 503
    assert response.json()["detail"] == "cache: no current cache generation"


async def test_not_ready_when_the_database_is_down(settings: Settings) -> None:
    down = settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/none"}
    )
    response = await _readyz(down)
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"
    assert response.json()["detail"] == "database: unreachable"


async def test_readyz_needs_no_key(settings: Settings) -> None:
    settings.api_read_keys = "secret"
    response = await _readyz(settings)
    assert response.status_code == 200
