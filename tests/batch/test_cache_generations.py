"""Sharded infer into cache generations, on the real database and broker: the generation
becomes current only once every shard is written, readers see the previous one until then,
a batch worker killed mid-shard (a real process, SIGKILL) leaves the previous generation
serving and its restart completes the new one; old generations are dropped without blocking
readers; the operator's invalidation (one customer, a region, everything) and a cache past
its TTL (still served, marked stale; the api stays ready)."""

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
import structlog
from typer.testing import CliRunner

from mgrecs.api.app import create_app
from mgrecs.batch import generations
from mgrecs.batch.inference import infer
from mgrecs.batch.shards import ModelCache, run_shard, shard_of
from mgrecs.batch.training import retrain
from mgrecs.batch.worker import BatchWorker
from mgrecs.cli.embedded import free_port
from mgrecs.cli.main import app
from mgrecs.cli.processes import ServiceProcess
from mgrecs.common import topics
from mgrecs.common.schemas import InferShard, ScheduleTick
from mgrecs.common.settings import Settings, get_settings
from mgrecs.store import cache_generations
from mgrecs.store.cache import AGGREGATES_VIEW, PARTITIONED, USERS, invalidate, partition
from mgrecs.store.cache_generations import DETACH_STATE, Generation
from support.fake_runtime import FakeRuntime
from support.helpers import TcpProxy, asgi_client, eventually, read_topic, running, serve
from support.shop import ACTIVE_CUSTOMERS, BOUGHT_PRODUCTS, insert_shop
from support.ticks import finished, publish, tick

USERS_VIEW = "SELECT user_id, recommendations, updated_at FROM offline_user_recommendations"


async def cached_users(pool: asyncpg.Pool) -> dict[str, Any]:
    """What a reader of the legacy table sees: user id -> (list, updated_at)."""
    rows = await pool.fetch(USERS_VIEW)
    return {r["user_id"]: (r["recommendations"], r["updated_at"]) for r in rows}


async def current(pool: asyncpg.Pool) -> int | None:
    value = await pool.fetchval("SELECT current_cache_generation()")
    return None if value is None else int(value)


async def generation_row(pool: asyncpg.Pool, number: int) -> Generation:
    found = await cache_generations.get(pool, number)
    assert found is not None
    return found


async def partition_exists(pool: asyncpg.Pool, name: str) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


@pytest.fixture
async def served(pool: asyncpg.Pool, settings: Settings) -> int:
    """`support.shop`'s purchases, a trained model and a first generation built from it
    (in-process); its number."""
    await insert_shop(pool)
    settings.infer_shards = 3
    await retrain(pool, settings)
    return (await infer(pool, settings)).generation


def test_shards_are_stable_and_cover_every_key() -> None:
    keys = [f"c{n}" for n in range(200)]
    assigned = [shard_of(key, 4) for key in keys]
    assert assigned == [shard_of(key, 4) for key in keys]  # no per-process salt
    assert set(assigned) == {0, 1, 2, 3}
    assert shard_of("c1", 4) == 1  # CRC-32: the same number in every worker and release


async def test_a_generation_becomes_current_only_after_its_last_shard(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    before = await cached_users(pool)
    assert set(before) == ACTIVE_CUSTOMERS
    model = await pool.fetchrow("SELECT version, artifact_uri FROM model_versions WHERE active")
    building = await generations.create(
        pool,
        tick_id=None,
        model_version=model["version"],
        artifact_uri=model["artifact_uri"],
        shards=3,
        active_since=(await generation_row(pool, served)).active_since,
    )
    number = building.generation
    models = ModelCache(settings)
    for shard in (2, 0):
        assert await run_shard(
            pool, settings, InferShard(generation=number, shard=shard, shards=3), models
        )
        # A reader during the build sees the whole previous generation, nothing of this one.
        assert await current(pool) == served
        assert await cached_users(pool) == before
    assert (await generation_row(pool, number)).state == "building"
    # A duplicate task of a written shard is skipped.
    assert not await run_shard(
        pool, settings, InferShard(generation=number, shard=0, shards=3), models
    )

    assert await run_shard(pool, settings, InferShard(generation=number, shard=1, shards=3), models)

    done = await cache_generations.get(pool, number)
    assert done is not None and done.state == "current" and done.shards_done == 3
    assert (done.users, done.products) == (len(ACTIVE_CUSTOMERS), len(BOUGHT_PRODUCTS))
    assert (await generation_row(pool, served)).state == "retired"
    after = await cached_users(pool)
    assert set(after) == ACTIVE_CUSTOMERS
    assert all(after[user][1] > before[user][1] for user in after)
    similar = await pool.fetch("SELECT product_id FROM offline_similar_items")
    assert {r["product_id"] for r in similar} == BOUGHT_PRODUCTS
    shards = await pool.fetch(
        "SELECT shard, users FROM cache_shards WHERE generation = $1 ORDER BY shard", number
    )
    assert [r["shard"] for r in shards] == [0, 1, 2]
    assert sum(r["users"] for r in shards) == len(ACTIVE_CUSTOMERS)


async def test_a_failing_shard_leaves_the_previous_generation_serving(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    before = await cached_users(pool)
    artifact = Path(await pool.fetchval("SELECT artifact_uri FROM model_versions WHERE active"))
    await asyncio.to_thread(artifact.unlink)

    with pytest.raises(FileNotFoundError):
        await infer(pool, settings)

    failed = (await cache_generations.recent(pool, 1))[0]
    assert failed.state == "failed" and "shard 0" in (failed.error or "")
    assert await current(pool) == served
    assert await cached_users(pool) == before


async def test_a_generation_left_building_too_long_is_failed_by_the_next_run(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    model = await pool.fetchrow("SELECT version, artifact_uri FROM model_versions WHERE active")
    abandoned = await generations.create(
        pool,
        tick_id="killed-long-ago",
        model_version=model["version"],
        artifact_uri=model["artifact_uri"],
        shards=3,
        active_since=(await generation_row(pool, served)).active_since,
    )
    await pool.execute(
        "UPDATE cache_generations SET created_at = now() - interval '7 hours'"
        " WHERE generation = $1",
        abandoned.generation,
    )
    summary = await infer(pool, settings)
    left = await cache_generations.get(pool, abandoned.generation)
    assert left is not None and left.state == "failed" and "still building" in (left.error or "")
    assert await current(pool) == summary.generation > abandoned.generation
    # The failed generation's rows are dropped with the old ones.
    assert not await partition_exists(pool, f"offline_user_recommendations_g{abandoned.generation}")


async def test_old_generations_are_dropped_and_the_previous_one_kept(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    assert served == 2  # generation 1 is the one the migration made of the old tables
    settings.cache_keep_generations = 2
    numbers = [(await infer(pool, settings)).generation for _ in range(2)]
    assert numbers == [3, 4]
    states = {g.generation: g.state for g in await cache_generations.recent(pool)}
    assert states == {1: "retired", 2: "retired", 3: "retired", 4: "current"}
    for table in ("offline_user_recommendations", "offline_similar_items"):
        assert [await partition_exists(pool, f"{table}_g{n}") for n in (1, 2, 3, 4)] == [
            False,
            False,
            True,  # the previous generation, kept
            True,
        ]
    rows = await pool.fetchval("SELECT count(*) FROM offline_user_recommendations_rows")
    assert rows == 2 * len(ACTIVE_CUSTOMERS)


async def _waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
    )


async def test_removing_an_old_generation_never_blocks_cache_readers(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    """A reader holds a transaction that read the cache (its locks on the tables and the old
    partitions) while the old generation is removed: the removal waits for it, and a new
    read on another connection, allowed 1 s for any lock, completes meanwhile (a plain DROP
    of a partition locks its parent ACCESS EXCLUSIVE: this read would queue behind it)."""
    newer = await infer(pool, settings)  # `served` retired; its partitions are to go
    reads = [
        f"SELECT count(*) FROM {view}"
        for view in ("offline_user_recommendations", "offline_similar_items", AGGREGATES_VIEW)
    ]
    async with pool.acquire() as holder, pool.acquire() as reader:
        await reader.execute("SET lock_timeout = '1s'")
        async with holder.transaction(isolation="repeatable_read"):
            for read in reads:
                await holder.fetchval(read)
            removal = asyncio.create_task(generations.clean(pool, keep=1))
            await eventually(lambda: _waiting_on_a_lock(pool))
            assert not removal.done()
            counts = [await reader.fetchval(read) for read in reads]
            served_rows = await reader.fetchval(
                "SELECT count(*) FROM offline_user_recommendations_rows WHERE generation = $1",
                served,
            )
        assert await removal == [served]
        await reader.execute("RESET lock_timeout")
    assert counts[0] == len(ACTIVE_CUSTOMERS) and counts[1] == len(BOUGHT_PRODUCTS)
    assert counts[2] > 0
    assert served_rows == 0  # readers no longer see the generation being removed
    for view in PARTITIONED:
        assert not await partition_exists(pool, partition(view, served)), view
        assert await partition_exists(pool, partition(view, newer.generation)), view
    assert (await generation_row(pool, served)).state == "retired"
    assert await pool.fetchval(
        "SELECT dropped_at IS NOT NULL FROM cache_generations WHERE generation = $1", served
    )


async def test_a_detach_left_pending_is_finalized_by_the_next_clean(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    await infer(pool, settings)
    users = USERS.partition(served)
    async with pool.acquire() as holder, pool.acquire() as remover:
        await remover.execute("SET lock_timeout = '200ms'")
        async with holder.transaction():
            await holder.fetchval("SELECT count(*) FROM offline_user_recommendations")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await remover.execute(
                    f"ALTER TABLE {USERS.rows} DETACH PARTITION {users} CONCURRENTLY"
                )
    assert await pool.fetchval(DETACH_STATE, users, USERS.rows) is True  # pending
    assert await generations.clean(pool, keep=1) == [served]
    assert not await partition_exists(pool, users)


async def test_a_worker_killed_mid_shard_leaves_the_old_generation_serving_and_the_retry_completes(
    served: int, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    """A real `mgrecs-batch` process takes the infer tick and its shards; each shard pauses
    before it is written, and the process is SIGKILLed during the pause. A new process gets
    the tick and the unfinished shards again (their offsets were never committed)."""
    before = await cached_users(pool)
    env = {
        "MGRECS_DATABASE_URL": settings.database_url,
        "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MGRECS_TOPIC_PREFIX": settings.topic_prefix,
        "MGRECS_ARTIFACT_DIR": settings.artifact_dir,
        "MGRECS_INFER_SHARDS": "2",
        "MGRECS_INFER_SHARD_PAUSE_SECONDS": "600",
        "MGRECS_BATCH_METRICS_PORT": str(free_port()),
        "MGRECS_LOG_JSON": "false",
    }
    first = ServiceProcess("batch", ["mgrecs-batch"], env, tmp_path / "batch-1.log")
    infer_tick, infer_bytes = tick("infer")
    await publish(settings, infer_bytes)
    first.start()
    try:
        building = await eventually(
            lambda: cache_generations.building_for_tick(pool, infer_tick.tick_id), timeout=90
        )
        # Scored and pausing before the write: mid-shard.
        await eventually(lambda: _log_has(first, "infer_shard_pausing"), timeout=60)
    finally:
        assert first.process is not None
        first.process.kill()
        first.wait()

    assert (await generation_row(pool, building.generation)).state == "building"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM cache_shards WHERE generation = $1", building.generation
        )
        == 0
    )
    assert await current(pool) == served
    assert await cached_users(pool) == before
    async with asgi_client(create_app(settings)) as client:
        answer = (await client.get("/v1/users/c1/recommendations")).json()
    assert answer["source"] == "cache"
    assert [item["product_id"] for item in answer["items"]] == [
        item["product_id"] for item in before["c1"][0][:10]
    ]

    second = ServiceProcess(
        "batch",
        ["mgrecs-batch"],
        {**env, "MGRECS_INFER_SHARD_PAUSE_SECONDS": "0"},
        tmp_path / "batch-2.log",
    )
    second.start()
    try:
        done = await eventually(lambda: finished(pool, infer_tick.tick_id), timeout=180)
    finally:
        second.terminate()
        second.wait()
    assert done["status"] == "ok", done
    assert done["generation"] == building.generation
    assert await current(pool) == building.generation
    assert (await generation_row(pool, served)).state == "retired"
    after = await cached_users(pool)
    assert set(after) == ACTIVE_CUSTOMERS
    assert all(after[user][1] > before[user][1] for user in after)


async def test_two_workers_share_the_shards_of_an_infer_tick(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    """Two batch workers in one consumer group: the tick's six shard tasks are spread over
    them and each shard is written exactly once."""
    settings.infer_shards = 6
    infer_tick, infer_bytes = tick("infer")
    async with running(BatchWorker(settings)), running(BatchWorker(settings)):
        await publish(settings, infer_bytes)
        done = await eventually(lambda: finished(pool, infer_tick.tick_id), timeout=120)
    assert done["status"] == "ok", done
    assert (done["shards"], done["users"], done["products"]) == (
        6,
        len(ACTIVE_CUSTOMERS),
        len(BOUGHT_PRODUCTS),
    )
    shards = await pool.fetch(
        "SELECT shard FROM cache_shards WHERE generation = $1 ORDER BY shard", done["generation"]
    )
    assert [r["shard"] for r in shards] == list(range(6))
    assert await current(pool) == done["generation"] > served
    assert set(await cached_users(pool)) == ACTIVE_CUSTOMERS


async def _log_has(process: ServiceProcess, text: str) -> bool:
    return text in await asyncio.to_thread(process.log_tail, 200)


# -- invalidation and TTL -----------------------------------------------------------------


async def test_invalidating_one_customer_a_region_or_everything(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    # c1, c2, c3 are in north; c4, c5 in south (support.shop.ORDERS).
    one = await invalidate(pool, customer="c1")
    assert (one.generation, one.users) == (served, 1)
    assert set(await cached_users(pool)) == ACTIVE_CUSTOMERS - {"c1"}
    async with asgi_client(create_app(settings)) as client:
        c1 = (await client.get("/v1/users/c1/recommendations")).json()
        c2 = (await client.get("/v1/users/c2/recommendations")).json()
    assert c1["source"] != "cache" and c2["source"] == "cache"

    region = await invalidate(pool, region="south")
    assert region.users == 2
    assert set(await cached_users(pool)) == {"c2", "c3"}

    everything = await invalidate(pool, everything=True)
    assert (everything.generation, everything.users) == (served, 2)
    assert everything.products == len(BOUGHT_PRODUCTS)
    assert await cached_users(pool) == {}
    assert await pool.fetchval("SELECT count(*) FROM offline_similar_items") == 0
    assert await current(pool) is None
    assert (await invalidate(pool, customer="c2")).generation is None

    # The next generation serves everyone again.
    await infer(pool, settings)
    assert set(await cached_users(pool)) == ACTIVE_CUSTOMERS


async def test_invalidate_command_and_refresh(
    served: int, pool: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MGRECS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MGRECS_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("MGRECS_TOPIC_PREFIX", settings.topic_prefix)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        both = await asyncio.to_thread(
            runner.invoke, app, ["cache", "invalidate", "--all", "--customer", "c1"]
        )
        assert both.exit_code != 0
        result = await asyncio.to_thread(
            runner.invoke, app, ["cache", "invalidate", "--region", "north", "--refresh"]
        )
        assert result.exit_code == 0, result.output
        status = await asyncio.to_thread(
            runner.invoke, app, ["cache", "status"], env={"COLUMNS": "200"}
        )
    finally:
        get_settings.cache_clear()
    assert f"invalidated 3 customer and 0 product rows of generation {served}" in result.output
    assert set(await cached_users(pool)) == {"c4", "c5"}
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, settings)
    )
    published = [ScheduleTick.model_validate_json(r.value) for r in records]
    assert [t.kind for t in published] == ["infer"]
    assert published[0].tick_id in result.output
    assert status.exit_code == 0 and "current" in status.output and "3/3" in status.output


TWO_TTLS_LATE = "UPDATE cache_generations SET completed_at = now() - interval '13 hours'"
"""The drill "infer stopped for longer than two TTLs" (cache_ttl_hours 6), at once."""


async def _answers(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the API says, once ready, about a cached customer and product and a region."""
    async with asgi_client(create_app(settings)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        paths = {
            "user": "/v1/users/c1/recommendations",
            "similar": "/v1/products/p1/similar",
            "sample": "/v1/regions/north/recommendations",
            "exact": "/v1/regions/north/recommendations?mode=exact",
        }
        responses = {name: await client.get(path) for name, path in paths.items()}
    assert all(r.status_code == 200 for r in responses.values()), responses
    return {name: r.json() for name, r in responses.items()}


async def test_infer_late_by_two_ttls_the_api_stays_ready_and_serves_the_cache_marked_stale(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    fresh = await _answers(settings)
    assert all(not answer["stale"] for answer in fresh.values())
    await pool.execute(TWO_TTLS_LATE)
    late = await _answers(settings)  # the engine is down: nothing fresher answers
    for name, answer in late.items():
        assert answer["stale"] is True, name
        assert answer["cache_age_seconds"] >= 12 * 3600, name
        assert answer["items"], name
        assert answer["items"] == fresh[name]["items"], name  # the same generation's lists
    assert [late[name]["source"] for name in late] == ["cache", "cache", "cache", "aggregates"]
    assert late["exact"]["generation"] == served

    settings.cache_ttl_hours = 0  # never expires
    assert all(not answer["stale"] for answer in (await _answers(settings)).values())


async def test_a_stale_row_yields_to_the_engine_when_it_answers(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    await pool.execute(TWO_TTLS_LATE)
    fake = FakeRuntime()
    async with serve(fake.app, settings.engine_port):
        answers = await _answers(settings)
    for name in ("user", "similar"):
        assert answers[name]["source"] == "realtime", name
        assert answers[name]["stale"] is False and answers[name]["cache_age_seconds"] is None
    assert answers["user"]["items"][0]["product_id"] == "rt-c1-0"
    assert [r.get("userId") or r.get("itemId") for r in fake.requests] == ["c1", "p1"]


async def test_after_invalidating_everything_the_region_page_answers_from_popularity(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    await invalidate(pool, everything=True)
    answers = await _answers(settings)
    assert answers["user"]["source"] == "popular" and answers["user"]["items"]
    # The engine is down too, and nothing is cached: the catalogue answers similar items.
    assert answers["similar"]["source"] == "catalogue"
    # north's active customers c1, c2, c3 (support.shop.ORDERS) bought p2 and p3 all three,
    # p1 two of them.
    for mode in ("sample", "exact"):
        page = answers[mode]
        assert page["source"] == "popular" and page["stale"] is False, mode
        assert page["population"] == page["sample_size"] == 3, mode
        lines = [(item["product_id"], item["users"], item["match_rate"]) for item in page["items"]]
        assert lines == [("p2", 3, 100.0), ("p3", 3, 100.0), ("p1", 2, 66.7)], mode


async def test_a_shard_whose_database_goes_away_waits_and_completes(
    served: int, pool: asyncpg.Pool, settings: Settings
) -> None:
    """The database goes away (connections cut, new ones refused for 3 s) while a shard is
    between scoring and writing, as a restart looks to the worker: the shard waits and runs
    again, and the generation completes instead of failing."""
    proxy, proxied_url = await _database_proxy(settings.database_url)
    through_proxy = settings.model_copy(update={"database_url": proxied_url})
    through_proxy.infer_shards = 2
    through_proxy.infer_shard_pause_seconds = 1.5
    infer_tick, infer_bytes = tick("infer")
    with structlog.testing.capture_logs() as logs:
        async with running(BatchWorker(through_proxy)):
            await publish(settings, infer_bytes)

            async def pausing() -> bool:
                return any(e["event"] == "infer_shard_pausing" for e in logs)

            await eventually(pausing, timeout=90, interval=0.05)
            await proxy.cut()
            await asyncio.sleep(3)
            await proxy.restore()
            done = await eventually(lambda: finished(pool, infer_tick.tick_id), timeout=120)
    await proxy.cut()
    assert done["status"] == "ok", done
    assert any(e["event"] == "shard_waiting_for_database" for e in logs)
    assert await current(pool) == done["generation"] > served


async def _database_proxy(url: str) -> tuple[TcpProxy, str]:
    """A started proxy to the server of `url` (TCP, or the Unix socket of a `?host=/dir`
    URL, as the embedded PostgreSQL gives) and `url` through it."""
    target = urlsplit(url)
    query = parse_qs(target.query)
    socket_dir = next((h for h in query.pop("host", []) if h.startswith("/")), None)
    port = target.port or 5432
    socket = f"{socket_dir}/.s.PGSQL.{port}" if socket_dir else None
    proxy = await TcpProxy(target.hostname or "127.0.0.1", port, unix_path=socket).start()
    credentials = target.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return proxy, urlunsplit(target._replace(netloc=netloc, query=urlencode(query, doseq=True)))
