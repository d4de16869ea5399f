"""Batch jobs: retrain and infer against the real database, and the tick worker on the
real broker (idempotent ticks, dead letters, failures recorded)."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import structlog

from mgrecs.batch.buy_again import KEEP_VERSIONS, BuyAgainFit, save_buy_again
from mgrecs.batch.dataset import load_lines
from mgrecs.batch.inference import infer
from mgrecs.batch.training import retrain
from mgrecs.batch.worker import BatchWorker
from mgrecs.common import topics
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings
from mgrecs.engine.model import RecommenderModel
from mgrecs.engine.recipes import make_recipe
from mgrecs.engine.repurchase import BuyAgainParams, RepurchaseStats, fit_repurchase
from mgrecs.store import jobs
from mgrecs.store.cache import SIMILAR, USERS, put_current
from mgrecs.store.model_versions import RECIPE, ModelVersion, NoActiveModel, register
from mgrecs.store.orders import StoredLine, StoredOrder, write_orders
from mgrecs.store.orders import insert_orders as store_orders
from support.helpers import eventually, read_topic, running
from support.shop import (
    ACTIVE_CUSTOMERS,
    BOUGHT_PRODUCTS,
    ORDERS,
    check_cache_list,
    insert_orders,
    insert_pairs,
)
from support.ticks import finished, publish, tick


async def test_retrain_registers_one_active_model(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    version = await retrain(pool, settings)

    rows = await pool.fetch("SELECT * FROM model_versions")
    assert len(rows) == 1
    row = rows[0]
    assert row["version"] == version.version and row["active"] is True
    assert row["recipe"] == "cooccurrence"
    artifact = Path(row["artifact_uri"])
    assert artifact.is_absolute() and await asyncio.to_thread(artifact.is_file)
    assert artifact.name == f"cooccurrence-{version.version}.npz"
    assert artifact.parent == await asyncio.to_thread(Path(settings.artifact_dir).resolve)
    assert row["n_users"] == 6  # every customer who bought, active or not
    assert row["n_items"] == len(BOUGHT_PRODUCTS)
    assert row["n_interactions"] == sum(len(products) for *_, products in ORDERS)
    # Six customers are too few to hold out the latest purchases: the default recipe.
    metrics = row["metrics"]
    assert (metrics["recipe"], metrics["params"]) == ("rp3beta", make_recipe("rp3beta").params())
    assert "customers" in metrics["selection"]["fallback"]
    assert metrics["validation"] is None
    model = await asyncio.to_thread(RecommenderModel.load, artifact)
    assert model.recipe.name == "rp3beta"


async def test_retrain_stores_the_buy_again_statistics_and_parameters(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """c1 bought p1 every 10 days; c2 p1 once and p2 30 days apart; c3 p2 and p3 once. The
    new version's repurchase parameters and per-product statistics are stored with it, as
    the engine fits them on the lines that count."""
    orders = [
        ("r1", "c1", "north", 30, ["p1"]),
        ("r2", "c1", "north", 20, ["p1"]),
        ("r3", "c1", "north", 10, ["p1"]),
        ("r4", "c2", "north", 40, ["p1", "p2"]),
        ("r5", "c2", "north", 10, ["p2"]),
        ("r6", "c3", "south", 5, ["p2", "p3"]),
    ]
    customers = {(c, r) for _, c, r, _, _ in orders}
    await insert_orders(pool, orders, ["p1", "p2", "p3", "p4"], customers)

    version = await retrain(pool, settings)

    params = await pool.fetchrow(
        "SELECT * FROM repurchase_params WHERE model_version = $1", version.version
    )
    assert params["params"] == BuyAgainParams().as_dict()
    assert params["products"] == 3  # the bought ones
    rows = await pool.fetch(
        "SELECT product_id, repeat_rate, interval_days FROM repurchase_stats"
        " WHERE model_version = $1 ORDER BY product_id",
        version.version,
    )
    stored = {r["product_id"]: (r["repeat_rate"], r["interval_days"]) for r in rows}
    lines = await load_lines(pool)
    fitted = fit_repurchase(lines.customer, lines.item, lines.time, len(lines.item_ids))
    assert stored == {
        product: (pytest.approx(rate), pytest.approx(interval))
        for product, rate, interval in zip(
            lines.item_ids, fitted.repeat_rate, fitted.interval_days, strict=True
        )
    }
    assert stored["p1"][0] > stored["p3"][0]  # re-bought by one of its two buyers, p3 never
    assert stored["p1"][1] == pytest.approx(10.0)  # every 10 days
    assert params["default_interval_days"] == pytest.approx(float(np.median(fitted.interval_days)))


async def test_buy_again_statistics_are_kept_for_recent_and_active_versions_only(
    pool: asyncpg.Pool,
) -> None:
    versions = [f"v{n:02d}" for n in range(KEEP_VERSIONS + 3)]
    for n, version in enumerate(versions):
        model = ModelVersion(version, RECIPE, "x", 1, 1, 1)
        await register(pool, model, promote=n == 0, reason="")  # the oldest is still active
    fit = BuyAgainFit(BuyAgainParams(), RepurchaseStats(np.ones(2), np.ones(2)), ["a", "b"])
    async with pool.acquire() as conn:
        for version in versions:
            await save_buy_again(conn, version, fit)
        await save_buy_again(conn, versions[-1], fit)  # again: replaced, not doubled
    kept = [r[0] for r in await pool.fetch("SELECT model_version FROM repurchase_params")]
    assert sorted(kept) == [versions[0], *versions[-KEEP_VERSIONS:]]
    counts = await pool.fetch(
        "SELECT model_version, count(*) FROM repurchase_stats GROUP BY model_version"
    )
    assert {r[0]: r[1] for r in counts} == dict.fromkeys(kept, 2)


async def test_retrain_chooses_the_recipe_on_the_latest_purchases(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """`support.shop.insert_pairs`: enough purchases to validate on."""
    await insert_pairs(pool)
    settings.train_recipes = "itemknn, rp3beta"
    settings.train_budget_seconds = 5.0

    version = await retrain(pool, settings)

    metrics = await pool.fetchval(
        "SELECT metrics FROM model_versions WHERE version = $1", version.version
    )
    assert metrics["selection"]["fallback"] is None
    assert [c["recipe"] for c in metrics["selection"]["candidates"]] == ["itemknn", "rp3beta"]
    assert metrics["recipe"] in ("itemknn", "rp3beta")
    chosen, popularity = metrics["validation"]["chosen"], metrics["validation"]["popularity"]
    expected = {"precision@10", "recall@10", "ndcg@10", "mrr", "coverage", "users"}
    assert set(chosen) == set(popularity) == expected
    assert chosen["users"] == popularity["users"] == 30
    assert chosen["ndcg@10"] == 1.0 > popularity["ndcg@10"]  # b<i> is a<i>'s only partner
    model = await asyncio.to_thread(RecommenderModel.load, Path(version.artifact_uri))
    assert (model.recipe.name, model.recipe.params()) == (metrics["recipe"], metrics["params"])
    assert model.recommend(["a3"], "south", 1)[0].item_id == "b3"


async def test_second_retrain_deactivates_the_first(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    first = await retrain(pool, settings)
    second = await retrain(pool, settings)
    assert first.version != second.version
    rows = await pool.fetch("SELECT version, active FROM model_versions ORDER BY trained_at")
    assert [(r["version"], r["active"]) for r in rows] == [
        (first.version, False),
        (second.version, True),
    ]


async def test_infer_fills_exactly_the_active_customers_and_known_products(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    settings.recommendations_per_user = 4
    settings.similar_per_product = 3
    stale = datetime(2020, 1, 1)
    for user in ("c1", "gone"):
        await put_current(pool, USERS, user, [{"product_id": "p7", "score": 0.5}], stale)
    await put_current(pool, SIMILAR, "p7", [{"product_id": "p1", "score": 0.5}], stale)
    await retrain(pool, settings)
    before = datetime.now(UTC).replace(tzinfo=None)
    summary = await infer(pool, settings)
    after = datetime.now(UTC).replace(tzinfo=None)

    users = {
        r["user_id"]: r for r in await pool.fetch("SELECT * FROM offline_user_recommendations")
    }
    similar = {r["product_id"]: r for r in await pool.fetch("SELECT * FROM offline_similar_items")}
    assert set(users) == ACTIVE_CUSTOMERS
    assert set(similar) == BOUGHT_PRODUCTS
    assert (summary.users, summary.products) == (len(ACTIVE_CUSTOMERS), len(BOUGHT_PRODUCTS))
    assert (summary.user_rows_deleted, summary.product_rows_deleted) == (1, 1)
    for row in users.values():
        check_cache_list(row["recommendations"], 4, BOUGHT_PRODUCTS)
        assert before <= row["updated_at"] <= after
    for product_id, row in similar.items():
        check_cache_list(row["similar_products"], 3, BOUGHT_PRODUCTS - {product_id})
        assert before <= row["updated_at"] <= after
    # The co-purchase structure shows: c3 (p2, p3) gets p1, bought with both by others.
    assert users["c3"]["recommendations"][0]["product_id"] == "p1"
    assert similar["p4"]["similar_products"][0]["product_id"] in {"p5", "p6"}


async def test_infer_covers_customers_who_ordered_after_training(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    await retrain(pool, settings)
    await store_orders(pool, [StoredOrder("o9", "c7", datetime.now(UTC), [StoredLine(0, "p4")])])
    summary = await infer(pool, settings)
    assert summary.users_unknown_to_model == 1
    row = await pool.fetchval(
        "SELECT recommendations FROM offline_user_recommendations WHERE user_id = 'c7'"
    )
    check_cache_list(row, settings.recommendations_per_user, BOUGHT_PRODUCTS)
    assert row[0]["product_id"] in {"p5", "p6"}  # bought with p4 by others


async def test_infer_forgets_purchases_cancelled_after_training(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    """c3's only order is cancelled after the model was trained: the next generation scores
    c3 from the lines that count (none), not from the model's memory of p2 and p3."""
    await retrain(pool, settings)
    await infer(pool, settings)
    query = "SELECT recommendations FROM offline_user_recommendations WHERE user_id = 'c3'"
    before = [item["product_id"] for item in await pool.fetchval(query)]
    assert not {"p2", "p3"} & set(before)
    cancelled = OrderEvent.model_validate(
        {
            "order_id": "o4",
            "ordered_at": datetime.now(UTC) - timedelta(days=5),
            "updated_at": datetime.now(UTC),
            "status": "cancelled",
            "customer": {"customer_id": "c3", "region": "north"},
            "lines": [{"product_id": p, "quantity": 1, "price": "2.50"} for p in ("p2", "p3")],
        }
    )
    await write_orders(pool, [cancelled])
    summary = await infer(pool, settings)
    after = await pool.fetchval(query)
    assert {"p2", "p3"} & {item["product_id"] for item in after}  # no longer excluded
    assert not any(item.get("reason", "").startswith("bought") for item in after)
    assert summary.users_unknown_to_model == 0


async def test_infer_keeps_purchases_in_when_told_to(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    """MGRECS_EXCLUDE_PURCHASED, for customers the model knows and for newcomers alike."""
    await retrain(pool, settings)
    await store_orders(pool, [StoredOrder("o9", "c7", datetime.now(UTC), [StoredLine(0, "p4")])])

    async def cached() -> dict[str, set[str]]:
        rows = await pool.fetch("SELECT user_id, recommendations FROM offline_user_recommendations")
        return {r["user_id"]: {i["product_id"] for i in r["recommendations"]} for r in rows}

    await infer(pool, settings)
    excluded = await cached()
    assert not {"p2", "p3"} & excluded["c3"] and "p4" not in excluded["c7"]
    settings.exclude_purchased = False
    await infer(pool, settings)
    kept = await cached()
    assert {"p2", "p3"} <= kept["c3"] and "p4" in kept["c7"]


async def test_infer_without_a_model_is_a_clear_error(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    with pytest.raises(NoActiveModel, match="no active cooccurrence model"):
        await infer(pool, settings)


# -- the worker on the real broker ------------------------------------------------------


async def test_worker_runs_retrain_then_infer_ticks(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    retrain_tick, retrain_bytes = tick("retrain")
    infer_tick, infer_bytes = tick("infer")
    await publish(settings, retrain_bytes, infer_bytes)
    async with running(BatchWorker(settings)):
        done = await eventually(lambda: finished(pool, infer_tick.tick_id), timeout=60)
    assert done["status"] == "ok"
    trained = await finished(pool, retrain_tick.tick_id)
    assert trained is not None and trained["status"] == "ok"
    assert done["version"] == trained["version"]
    cached = await pool.fetch("SELECT user_id FROM offline_user_recommendations")
    assert {r["user_id"] for r in cached} == ACTIVE_CUSTOMERS


async def test_the_same_tick_twice_runs_once(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    retrain_tick, retrain_bytes = tick("retrain", tick_id="nightly-2026-11-26")
    marker, marker_bytes = tick("infer")
    await publish(settings, retrain_bytes, retrain_bytes, marker_bytes)
    async with running(BatchWorker(settings)):
        await eventually(lambda: finished(pool, marker.tick_id), timeout=60)
    # Ticks of one partition are handled in order: the duplicate came before the marker.
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 1
    assert await pool.fetchval("SELECT count(*) FROM processed_ticks") == 2


async def test_a_tick_finished_before_a_restart_is_skipped(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    """The job finished but the worker died before committing: the redelivery is a no-op."""
    done, done_bytes = tick("retrain")
    await jobs.start(pool, done)
    await jobs.finish(pool, done.tick_id, {"status": "ok", "version": "earlier"})
    marker, marker_bytes = tick("retrain")
    await publish(settings, done_bytes, marker_bytes)
    async with running(BatchWorker(settings)):
        await eventually(lambda: finished(pool, marker.tick_id), timeout=60)
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 1
    assert await finished(pool, done.tick_id) == {"status": "ok", "version": "earlier"}


async def test_a_failing_job_is_recorded_and_the_worker_goes_on(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    infer_tick, infer_bytes = tick("infer")  # no model yet
    retrain_tick, retrain_bytes = tick("retrain")
    await publish(settings, infer_bytes, retrain_bytes)
    async with running(BatchWorker(settings)):
        trained = await eventually(lambda: finished(pool, retrain_tick.tick_id), timeout=60)
    failed = await finished(pool, infer_tick.tick_id)
    assert failed is not None and failed["status"] == "failed"
    assert "no active cooccurrence model" in failed["error"]
    assert trained["status"] == "ok"


async def test_invalid_ticks_go_to_the_dead_letter_topic(
    purchases: None, pool: asyncpg.Pool, settings: Settings
) -> None:
    marker, marker_bytes = tick("retrain")
    invalid = [
        b"not json",
        json.dumps({"kind": "explode"}).encode(),
        json.dumps({"kind": "infer", "tick_id": "x" * 65}).encode(),
    ]
    await publish(settings, *invalid, marker_bytes)
    async with running(BatchWorker(settings)):
        await eventually(lambda: finished(pool, marker.tick_id), timeout=60)
    # DLQ writes are awaited before the next tick is handled: all are there by now.
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS_DLQ, settings)
    )
    letters = [DeadLetter.model_validate_json(record.value) for record in records]
    assert [letter.payload.encode() for letter in letters] == invalid
    assert all(
        letter.source_topic == topics.topic(topics.SCHEDULE_TICKS, settings) for letter in letters
    )
    assert "not JSON" in letters[0].reason
    assert "kind" in letters[1].reason
    assert "tick_id: String should have at most 64 characters" in letters[2].reason
    assert [letter.offset for letter in letters] == [0, 1, 2]
    assert await pool.fetchval("SELECT count(*) FROM processed_ticks") == 1


async def test_an_unreachable_database_pauses_the_worker_which_retries_the_tick(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await pool.execute("ALTER TABLE processed_ticks RENAME TO processed_ticks_away")
    waiting, waiting_bytes = tick("infer")
    await publish(settings, waiting_bytes)
    worker = BatchWorker(settings)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(worker.run())

        async def retried_twice() -> bool:
            return [entry["event"] for entry in logs].count("tick_retrying") >= 2

        try:
            await eventually(retried_twice)
            assert not task.done(), "the worker died on a database error"
            await pool.execute("ALTER TABLE processed_ticks_away RENAME TO processed_ticks")
            done = await eventually(lambda: finished(pool, waiting.tick_id), timeout=60)
            assert done["status"] == "failed"  # no model yet: recorded, the worker goes on
            assert not task.done()
        finally:
            await worker.stop()
            await asyncio.wait_for(task, timeout=30)
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS_DLQ, settings)
    )
    assert records == []
