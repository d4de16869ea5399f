"""Retrain and refresh jobs: the refresh tick folds new customers and products in, one
retrain at a time across instances (an advisory lock on the real database), and each job's
steps with their seconds in `processed_ticks` and `mgrecs jobs`."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
from typer.testing import CliRunner

from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.batch.worker import BatchWorker
from mgrecs.cli.main import app
from mgrecs.common.db import create_pool
from mgrecs.common.settings import Settings
from mgrecs.store.jobs import AnotherRetrainRunning, retrain_lock
from mgrecs.store.model_versions import ModelVersion
from mgrecs.store.orders import StoredLine, StoredOrder
from mgrecs.store.orders import insert_orders as store_orders
from support.helpers import eventually, running
from support.shop import insert_shop
from support.ticks import finished, publish, tick

RETRAIN_STEPS = ["export", "quality", "evaluate", "train", "promote", "buy-again"]


async def purchases(pool: asyncpg.Pool) -> None:
    await insert_shop(pool, [("c8", "north")])


async def cached_for(pool: asyncpg.Pool, user_id: str) -> list[dict[str, Any]]:
    return list(
        await pool.fetchval(
            "SELECT recommendations FROM offline_user_recommendations WHERE user_id = $1",
            user_id,
        )
    )


async def steps_of(pool: asyncpg.Pool, tick_id: str) -> list[dict[str, Any]]:
    return list(
        await pool.fetchval("SELECT steps FROM processed_ticks WHERE tick_id = $1", tick_id)
    )


async def run_ticks(pool: asyncpg.Pool, settings: Settings, *kinds: str) -> list[str]:
    """Publish ticks of `kinds`, run the worker until the last one finished; their ids."""
    made = [tick(kind) for kind in kinds]
    await publish(settings, *(value for _, value in made))
    async with running(BatchWorker(settings)):
        await eventually(lambda: finished(pool, made[-1][0].tick_id), timeout=90)
    return [message.tick_id for message, _ in made]


async def test_a_refresh_tick_gives_a_new_customer_personal_recommendations(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """c8 is new and bought only p7, a product nobody had bought at the retrain; c1 bought
    p7 too since. The active model knows neither, so the cache gives c8 popular products;
    after a refresh the model does, and c8 gets what c1 bought with it."""
    await purchases(pool)
    first = await retrain(pool, settings)
    now = datetime.now(UTC)
    await store_orders(
        pool,
        [
            StoredOrder(order_id, customer, now, [StoredLine(0, "p7")], "north")
            for order_id, customer in (("o9", "c8"), ("o10", "c1"))
        ],
    )
    await infer(pool, settings)
    before = await cached_for(pool, "c8")
    assert all(item["score"] <= 0.1 for item in before)  # the popularity band only

    (refresh_id,) = await run_ticks(pool, settings, "refresh")

    detail = await finished(pool, refresh_id)
    assert detail is not None and detail["status"] == "ok", detail
    assert detail["promoted"] is True
    refreshed = detail["model"]
    assert refreshed["version"] != first.version
    assert refreshed["metrics"]["refresh_of"] == first.version
    assert (refreshed["metrics"]["recipe"], refreshed["metrics"]["params"]) == (
        first.metrics["recipe"],
        first.metrics["params"],
    )
    assert refreshed["metrics"]["selection"]["candidates"] == []  # no search
    assert refreshed["n_items"] == first.n_items + 1  # p7
    active = await pool.fetchrow("SELECT version, decision FROM model_versions WHERE active")
    assert active["version"] == refreshed["version"]
    assert active["decision"].startswith("refresh: ")
    after = await cached_for(pool, "c8")
    assert after[0]["score"] > 0.1 and "p7" in after[0]["reason"]
    assert after[0]["product_id"] in {"p1", "p2", "p3"}  # c1's other purchases
    assert [s["step"] for s in await steps_of(pool, refresh_id)] == [*RETRAIN_STEPS, "infer"]


async def test_a_refresh_before_any_retrain_fails_clearly(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await purchases(pool)
    (refresh_id,) = await run_ticks(pool, settings, "refresh")
    detail = await finished(pool, refresh_id)
    assert detail is not None and detail["status"] == "failed"
    assert "run a retrain tick first" in detail["error"]


async def test_two_concurrent_retrains_on_two_instances_run_one(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await purchases(pool)
    other = await create_pool(settings.database_url, min_size=2)  # a second batch instance
    try:
        results = await asyncio.gather(
            retrain(pool, settings), retrain(other, settings), return_exceptions=True
        )
    finally:
        await other.close()
    trained = [r for r in results if isinstance(r, ModelVersion)]
    skipped = [r for r in results if isinstance(r, AnotherRetrainRunning)]
    assert (len(trained), len(skipped)) == (1, 1), results
    assert str(skipped[0]) == "another retrain is running"
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 1
    await retrain(pool, settings)  # the lock was released
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 2


async def test_a_retrain_tick_during_another_retrain_is_recorded_as_skipped(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await purchases(pool)
    async with retrain_lock(pool):  # another instance's retrain holds the lock
        retrain_id, refresh_id = await run_ticks(pool, settings, "retrain", "refresh")
    for tick_id in (retrain_id, refresh_id):
        detail = await finished(pool, tick_id)
        assert detail is not None
        assert (detail["status"], detail["reason"]) == ("skipped", "another retrain is running")
        assert await steps_of(pool, tick_id) == []
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 0


async def test_retrain_steps_are_recorded_with_their_seconds_and_listed(
    pool: asyncpg.Pool, settings: Settings, cli_env: Settings
) -> None:
    await purchases(pool)
    retrain_id, infer_id = await run_ticks(pool, settings, "retrain", "infer")
    steps = await steps_of(pool, retrain_id)
    assert [s["step"] for s in steps] == RETRAIN_STEPS
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in steps)
    assert [s["step"] for s in await steps_of(pool, infer_id)] == ["start", "shards", "drift"]

    listed = await asyncio.to_thread(CliRunner().invoke, app, ["jobs"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0, listed.output
    assert retrain_id in listed.output and infer_id in listed.output
    assert "export " in listed.output and "promote " in listed.output
    assert listed.output.count("ok") >= 2


async def test_a_failed_step_is_recorded_as_failed(pool: asyncpg.Pool, settings: Settings) -> None:
    await purchases(pool)
    settings.max_bad_record_rate = -1.0  # every report fails
    (retrain_id,) = await run_ticks(pool, settings, "retrain")
    assert [(s["step"], s["status"]) for s in await steps_of(pool, retrain_id)] == [
        ("export", "ok"),
        ("quality", "failed"),
    ]
