"""Online accuracy on the real database and broker: the active version's served lists
against what the customers bought next, stored per day; below the share of the previous
version's NDCG@10 it alerts, and with auto_rollback the previous version serves again and an
infer is asked for; the daily `online` tick does it whether or not a cache fill ran."""

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from mgrecs.batch.drift import check_drift
from mgrecs.batch.online import check_online, run_online, score
from mgrecs.batch.scheduler import Scheduler
from mgrecs.batch.steps import Steps
from mgrecs.batch.worker import BatchWorker
from mgrecs.cli.main import app
from mgrecs.common import topics
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.served import ServedList
from mgrecs.common.settings import Settings
from mgrecs.store import online_metrics
from mgrecs.store.model_versions import AWS_RECIPE, RECIPE, ModelVersion, find_active, register
from mgrecs.store.online_metrics import OnlineMetrics, ServedThenBought
from mgrecs.store.orders import StoredLine, StoredOrder, insert_orders
from mgrecs.store.served import write_served
from support.helpers import eventually, read_topic, running
from support.ticks import finished, publish, tick

NOW = datetime.now(UTC)
TOP = [f"p{n}" for n in range(12)]


def test_the_score_is_the_offline_evaluations_on_a_hand_built_case() -> None:
    lists = [
        ServedThenBought("c1", TOP, ["p1", "x"]),  # hit at rank 2 of 2 relevant
        ServedThenBought("c2", TOP, ["p0"]),  # hit at rank 1
        ServedThenBought("c3", TOP, ["p11"]),  # rank 12: outside the top 10
    ]
    found = score(lists)
    ideal_two = 1 + 1 / math.log2(3)
    assert found.customers == 3
    assert found.precision == pytest.approx((1 / 10 + 1 / 10 + 0) / 3)
    assert found.recall == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert found.ndcg == pytest.approx(((1 / math.log2(3)) / ideal_two + 1 + 0) / 3)
    assert score([]).ndcg is None


async def _version(pool: asyncpg.Pool, version: str, days_ago: float, recipe: str = RECIPE) -> None:
    trained_at = NOW - timedelta(days=days_ago)
    model = ModelVersion(version, recipe, "x", 1, 1, 1, {}, trained_at)
    await register(pool, model, promote=True, reason="")


async def _serve_and_buy(pool: asyncpg.Pool, version: str, hit: bool) -> None:
    """c0..c3 are served a list by `version` 2 days ago (and c0 again, later, a list that
    must not count) and buy p0 a day later: a hit at rank 1 when `hit`, else none."""
    top = ["p0", "p1"] if hit else ["p5", "p6"]
    answers = [
        ServedList(
            served_id=f"{version}-{c}",
            served_at=NOW - timedelta(days=2),
            endpoint="user",
            customer_id=f"c{c}",
            product_ids=top,
            source="cache",
            model_version=version,
        )
        for c in range(4)
    ]
    answers.append(
        answers[0].model_copy(
            update={
                "served_id": "later",
                "served_at": NOW - timedelta(hours=1),
                "product_ids": ["p0"],
            }
        )
    )
    await write_served(pool, answers)
    orders = [
        StoredOrder(f"{version}-o{c}", f"c{c}", NOW - timedelta(days=1), [StoredLine(0, "p0")])
        for c in range(4)
    ]
    # bought before being served: not "next"
    orders.append(
        StoredOrder(f"{version}-early", "c1", NOW - timedelta(days=3), [StoredLine(0, "p9")])
    )
    await insert_orders(pool, orders)


async def test_the_active_versions_accuracy_is_stored_per_day(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await _version(pool, "v1", 5)
    await _serve_and_buy(pool, "v1", hit=True)

    check = await check_online(pool, settings, NOW)

    assert check is not None and check.model_version == "v1"
    assert check.metrics == OnlineMetrics(4, 0.1, 1.0, 1.0)
    assert check.alert is None
    stored = await online_metrics.latest(pool, ["v1"])
    assert stored["v1"] == check.metrics
    assert await pool.fetchval("SELECT day FROM online_metrics") == NOW.date()


@pytest.mark.parametrize("auto_rollback", [False, True])
async def test_below_the_share_of_the_previous_version_it_alerts_and_may_roll_back(
    pool: asyncpg.Pool, settings: Settings, auto_rollback: bool
) -> None:
    await _version(pool, "v1", 9)
    await online_metrics.save(
        pool, "v1", (NOW - timedelta(days=4)).date(), OnlineMetrics(50, 0.1, 0.5, 0.5)
    )
    await _version(pool, "v2", 3)
    await _serve_and_buy(pool, "v2", hit=False)
    watched = settings.model_copy(
        update={"online_min_customers": 4, "auto_rollback": auto_rollback, "drift_min_lines": 1000}
    )

    _, report = await check_drift(pool, watched)

    assert report.online is not None and report.online["ndcg@10"] == 0.0
    assert report.previous_online_ndcg == 0.5
    assert report.flags and report.flags[-1].startswith("online NDCG@10 0.0000 is below 80%")
    assert REGISTRY.get_sample_value("mgrecs_online_accuracy_alert") == 1.0
    active = await find_active(pool)
    assert active is not None
    if not auto_rollback:
        assert active.version == "v2" and report.rolled_back_to is None
        return
    assert active.version == "v1" and report.rolled_back_to == "v1"
    decision = await pool.fetchval("SELECT decision FROM model_versions WHERE version = 'v1'")
    assert decision.startswith("rolled back automatically: online NDCG@10")
    records = await read_topic(
        watched.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, watched)
    )
    ticks = [ScheduleTick.model_validate_json(record.value) for record in records]
    assert [(t.kind, t.tick_id) for t in ticks] == [("infer", "infer-rollback-v2")]


async def test_too_few_customers_give_no_alert(pool: asyncpg.Pool, settings: Settings) -> None:
    await _version(pool, "v1", 9)
    await online_metrics.save(pool, "v1", NOW.date(), OnlineMetrics(50, 0.1, 0.5, 0.5))
    await _version(pool, "v2", 3)
    await _serve_and_buy(pool, "v2", hit=False)

    check = await check_online(pool, settings.model_copy(update={"auto_rollback": True}), NOW)

    assert check is not None and check.metrics.customers == 4 and check.alert is None
    assert (await find_active(pool)) is not None
    assert check.rolled_back_to is None


async def test_the_drift_check_refreshes_the_impact_gauges(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await _version(pool, "v1", 5)
    await _serve_and_buy(pool, "v1", hit=True)  # 4 lines of p0 served 2 days before: 4.0
    await insert_orders(
        pool, [StoredOrder("x", "c9", NOW - timedelta(hours=2), [StoredLine(0, "p7")])]
    )

    _, report = await check_drift(pool, settings)

    assert report.online is not None and report.online["customers"] == 4
    revenue = REGISTRY.get_sample_value("mgrecs_attributed_revenue", {"model_version": "v1"})
    orders = REGISTRY.get_sample_value("mgrecs_attributed_orders", {"model_version": "v1"})
    assert (revenue, orders) == (4.0, 4.0)
    # not influenced: x, and c1's order placed before it was served
    assert REGISTRY.get_sample_value("mgrecs_baseline_revenue") == 2.0
    assert (
        REGISTRY.get_sample_value(
            "mgrecs_online_metric", {"model_version": "v1", "metric": "ndcg@10"}
        )
        == 1.0
    )


async def _run_online_ticks(pool: asyncpg.Pool, settings: Settings, *tick_ids: str) -> None:
    """Publish `online` ticks with `tick_ids` and run a batch worker until the last finished."""
    made = [tick("online", tick_id) for tick_id in tick_ids]
    await publish(settings, *(value for _, value in made))
    async with running(BatchWorker(settings)):
        await eventually(lambda: finished(pool, tick_ids[-1]), timeout=60)


async def test_the_scheduled_online_tick_scores_the_day_without_a_cache_fill(
    pool: asyncpg.Pool, settings: Settings, cli_env: Settings
) -> None:
    """Only the online schedule is on: its slot's tick, published by the scheduler, stores
    the day's figures; no other job ran; `mgrecs jobs` says what it found."""
    await _version(pool, "v1", 5)
    await _serve_and_buy(pool, "v1", hit=True)
    settings.schedule_retrain = settings.schedule_refresh = settings.schedule_infer = ""
    slot = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)
    async with running(Scheduler(settings, clock=lambda: slot + timedelta(minutes=1))):
        await eventually(lambda: read_topic(settings.kafka_bootstrap, _ticks_topic(settings)))

    async with running(BatchWorker(settings)):
        detail = await eventually(lambda: finished(pool, f"online-{slot.isoformat()}"), 60)

    assert detail["status"] == "ok", detail
    assert detail["check"]["model_version"] == "v1"
    assert detail["check"]["metrics"]["ndcg"] == 1.0
    steps = await pool.fetchval("SELECT steps FROM processed_ticks WHERE kind = 'online'")
    assert [step["step"] for step in steps] == ["online"]
    rows = await pool.fetch("SELECT model_version, day, customers FROM online_metrics")
    assert [tuple(row) for row in rows] == [("v1", NOW.date(), 4)]
    kinds = await pool.fetch("SELECT kind FROM processed_ticks")
    assert [row["kind"] for row in kinds] == ["online"]
    listed = await asyncio.to_thread(CliRunner().invoke, app, ["jobs"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0, listed.output
    assert "v1 online NDCG@10 1.0000 (4 customers)" in listed.output


async def test_online_ticks_are_idempotent_per_day(pool: asyncpg.Pool, settings: Settings) -> None:
    """Two online ticks the same day (a manual one after the scheduled one) leave one row,
    the day's newest figures; a tick redelivered runs once."""
    await _version(pool, "v1", 5)
    await _serve_and_buy(pool, "v1", hit=False)
    await _run_online_ticks(pool, settings, "online-first")
    first = await pool.fetchrow('SELECT customers, "ndcg@10" FROM online_metrics')
    assert tuple(first) == (4, 0.0)

    await write_served(  # c0..c3 bought p0: a list served before with p0 first now counts
        pool,
        [
            ServedList(
                served_id=f"early-{c}",
                served_at=NOW - timedelta(days=2, hours=1),
                endpoint="user",
                customer_id=f"c{c}",
                product_ids=["p0"],
                source="cache",
                model_version="v1",
            )
            for c in range(4)
        ],
    )
    await _run_online_ticks(pool, settings, "online-first", "online-second")

    rows = await pool.fetch('SELECT day, customers, "ndcg@10" FROM online_metrics')
    assert [tuple(row) for row in rows] == [(NOW.date(), 4, 1.0)]
    runs = await pool.fetchval("SELECT count(*) FROM processed_ticks WHERE kind = 'online'")
    assert runs == 2


async def test_the_online_ticks_job_alerts_and_rolls_back_as_the_drift_check_does(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """The job the worker runs for an online tick (called here: the infer it asks for would
    need a real model)."""
    await _version(pool, "v1", 9)
    await online_metrics.save(
        pool, "v1", (NOW - timedelta(days=4)).date(), OnlineMetrics(50, 0.1, 0.5, 0.5)
    )
    await _version(pool, "v2", 3)
    await _serve_and_buy(pool, "v2", hit=False)
    watched = settings.model_copy(update={"online_min_customers": 4, "auto_rollback": True})

    run = await run_online(pool, watched, Steps(pool))

    assert run.day == NOW.date() and run.check is not None
    assert run.check.alert is not None
    assert run.check.alert.startswith("online NDCG@10 0.0000 is below 80%")
    assert run.check.rolled_back_to == "v1"
    assert REGISTRY.get_sample_value("mgrecs_online_accuracy_alert") == 1.0
    active = await find_active(pool)
    assert active is not None and active.version == "v1"
    ticks = [ScheduleTick.model_validate_json(r.value) for r in await _ticks(watched)]
    assert [(t.kind, t.tick_id) for t in ticks] == [("infer", "infer-rollback-v2")]


async def test_in_aws_mode_the_online_tick_scores_the_aws_version(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """AWS mode's lineage (its campaigns serve it): the tick reads only PostgreSQL."""
    await _version(pool, "aws-v1", 5, AWS_RECIPE)
    await _serve_and_buy(pool, "aws-v1", hit=True)

    await _run_online_ticks(pool, settings.model_copy(update={"batch_mode": "aws"}), "online-aws")

    detail = await finished(pool, "online-aws")
    assert detail is not None and detail["status"] == "ok", detail
    assert detail["check"]["model_version"] == "aws-v1"
    stored = await online_metrics.latest(pool, ["aws-v1"])
    assert stored["aws-v1"] == OnlineMetrics(4, 0.1, 1.0, 1.0)


async def test_an_online_tick_before_any_model_does_nothing(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await _run_online_ticks(pool, settings, "online-empty")

    detail = await finished(pool, "online-empty")
    assert detail is not None and detail["status"] == "ok" and detail["check"] is None
    assert await pool.fetchval("SELECT count(*) FROM online_metrics") == 0


def _ticks_topic(settings: Settings) -> str:
    return topics.topic(topics.SCHEDULE_TICKS, settings)


async def _ticks(settings: Settings) -> list[Any]:
    return await read_topic(settings.kafka_bootstrap, _ticks_topic(settings))
