"""The promotion gate against the active version, on a real database and broker: the active
recipe measured again on the new version's period, the margin, the stored figure when it
cannot be; promote and rollback starting an infer that the cache and the answers follow."""

import asyncio
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from mgrecs.api.app import create_app
from mgrecs.batch.promotion import TOLERANCE, Incumbent, decide, decide_personalize
from mgrecs.batch.training import retrain
from mgrecs.batch.worker import BatchWorker
from mgrecs.cli.main import app
from mgrecs.common import topics
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings
from mgrecs.store import cache
from mgrecs.store.model_versions import RECIPE, ModelVersion, register
from support.helpers import asgi_client, eventually, read_topic, running
from support.shop import insert_orders
from support.ticks import finished


async def insert_regions_and_pairs(pool: asyncpg.Pool) -> None:
    """Pairs a_i, b_i (north bought both long ago, south bought a_i long ago and b_i in the
    last days) and an east corner (e1 with e0, e0 bought last by east customers, too few
    times to be among the 10 most popular overall). Item-kNN finds every late purchase
    (NDCG@10 1.0); regional popularity finds east's, not south's (about 0.69); popularity
    neither (about 0.24)."""
    orders: list[tuple[str, str, str, float, list[str]]] = []
    for c in range(40):
        orders.append((f"f{c}", f"full{c}", "north", 100 - c, [f"a{c % 5}", f"b{c % 5}"]))
    for c in range(30):
        orders.append((f"l{c}a", f"late{c}", "south", 90 - c, [f"a{c % 5}"]))
        orders.append((f"l{c}b", f"late{c}", "south", 1 + c / 100, [f"b{c % 5}"]))
    for c in range(5):
        orders.append((f"e{c}", f"efull{c}", "east", 80 - c, ["e1", "e0"]))
    for c in range(10):
        orders.append((f"m{c}a", f"elate{c}", "east", 85 - c, ["e1"]))
        orders.append((f"m{c}b", f"elate{c}", "east", 1 + c / 100, ["e0"]))
    products = [f"{x}{n}" for x in "ab" for n in range(5)] + ["e0", "e1"]
    customers = {(customer, region) for _, customer, region, _, _ in orders}
    await insert_orders(pool, orders, products, customers)


async def gate_of(pool: asyncpg.Pool, version: str) -> tuple[bool, str, dict[str, Any]]:
    row = await pool.fetchrow(
        "SELECT active, decision, metrics FROM model_versions WHERE version = $1", version
    )
    return row["active"], row["decision"], row["metrics"]


def ndcg(metrics: dict[str, Any]) -> float:
    return float(metrics["validation"]["chosen"]["ndcg@10"])


async def test_a_worse_version_is_refused_against_a_better_active_one(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_regions_and_pairs(pool)
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "itemknn"
    good = await retrain(pool, settings)
    settings.train_recipes = "regional-popularity"  # beats popularity, not item-kNN
    weak = await retrain(pool, settings)

    active, decision, metrics = await gate_of(pool, weak.version)
    assert not active and (await gate_of(pool, good.version))[0]
    popularity = metrics["validation"]["popularity"]["ndcg@10"]
    assert popularity < ndcg(metrics) < ndcg(good.metrics)
    assert decision.startswith("does not beat the active version by the margin")
    assert f"active {good.version} 1.0000 (same period)" in decision
    assert metrics["gate"] == {
        "version": good.version,
        "ndcg": 1.0,
        "source": "same period",
        "margin": settings.promotion_margin,
    }


async def test_a_better_version_replaces_the_active_one_only_beyond_the_margin(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_regions_and_pairs(pool)
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "regional-popularity"
    first = await retrain(pool, settings)
    assert (await gate_of(pool, first.version))[0]  # the first model: against popularity

    settings.train_recipes = "itemknn"
    settings.promotion_margin = 0.5  # 1.0 is not 50 % above the active's 0.69
    held = await retrain(pool, settings)
    active, decision, metrics = await gate_of(pool, held.version)
    measured = metrics["gate"]["ndcg"]
    assert metrics["gate"]["source"] == "same period"
    assert not active and ndcg(metrics) < measured * 1.5
    assert "does not beat the active version by the margin" in decision

    settings.promotion_margin = 0.4  # 1.0 is 40 % above 0.69
    better = await retrain(pool, settings)
    active, decision, metrics = await gate_of(pool, better.version)
    assert active and ndcg(metrics) >= metrics["gate"]["ndcg"] * 1.4
    assert decision.startswith("beats the active version and popularity")
    assert f"margin {40:g} %" in decision


async def test_an_active_recipe_that_cannot_be_measured_again_stands_on_its_stored_figure(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """The 0.3 against 0.9 of the issue: a recipe since retired, validated at 0.9."""
    await insert_regions_and_pairs(pool)
    stored = {"chosen": {"ndcg@10": 0.9}, "popularity": {"ndcg@10": 0.2}}
    retired = {"recipe": "retired-recipe", "params": {}, "validation": stored}
    await register(
        pool,
        ModelVersion("old", RECIPE, "/nowhere.npz", 1, 1, 1, retired),
        promote=True,
        reason="",
    )
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "regional-popularity"
    weak = await retrain(pool, settings)
    active, decision, metrics = await gate_of(pool, weak.version)
    assert not active
    assert "active old 0.9000 (stored)" in decision
    assert metrics["gate"]["source"] == "stored"


async def test_the_active_recipe_on_newer_data_needs_no_margin(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_regions_and_pairs(pool)
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "itemknn"
    first = await retrain(pool, settings)
    settings.promotion_margin = 1.0  # no figure could be twice the same one
    again = await retrain(pool, settings)
    active, decision, metrics = await gate_of(pool, again.version)
    assert metrics["params"] == first.metrics["params"]
    assert active and "the active recipe and parameters on newer data" in decision
    assert metrics["gate"]["source"] == "same model"


def validated(chosen: float, popularity: float) -> dict[str, Any]:
    return {"validation": {"chosen": {"ndcg@10": chosen}, "popularity": {"ndcg@10": popularity}}}


def test_the_margin_is_respected_at_the_boundary() -> None:
    active = Incumbent("v1", 0.5, "same period")
    assert decide(validated(0.55, 0.1), active, 0.1).promote  # 0.5 x 1.1, to the rounding
    assert not decide(validated(0.549999, 0.1), active, 0.1).promote
    assert decide(validated(0.5, 0.1), active, 0.0).promote  # no margin: a tie serves


figures = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(chosen=figures, popularity=figures, active=figures, margin=figures)
def test_decide_promotes_exactly_above_both_bars(
    chosen: float, popularity: float, active: float, margin: float
) -> None:
    decision = decide(validated(chosen, popularity), Incumbent("v1", active, "same period"), margin)
    bar = active * (1 + margin)
    assert decision.promote == (chosen > popularity and chosen + TOLERANCE >= bar)
    assert f"{chosen:.4f}" in decision.reason and f"{popularity:.4f}" in decision.reason
    if chosen > popularity:
        assert f"{active:.4f}" in decision.reason and f"{bar:.4f}" in decision.reason


@given(margin=st.floats(allow_nan=False, allow_infinity=False))
def test_the_margin_setting_is_a_share_between_0_and_1(margin: float) -> None:
    if 0 <= margin <= 1:
        assert Settings(promotion_margin=margin).promotion_margin == margin
    else:
        with pytest.raises(ValidationError, match="promotion_margin"):
            Settings(promotion_margin=margin)


@given(candidate=figures, active=figures, margin=figures)
def test_the_personalize_gate_compares_solution_metrics_by_the_margin(
    candidate: float, active: float, margin: float
) -> None:
    retrain = decide_personalize(candidate, ("v1", active), margin, refresh=False)
    assert retrain.promote == (candidate + TOLERANCE >= active * (1 + margin))
    assert f"{candidate:.4f}" in retrain.reason and f"{active:.4f}" in retrain.reason
    assert decide_personalize(candidate, ("v1", active), margin, refresh=True).promote
    assert decide_personalize(candidate, None, margin, refresh=False).promote
    assert not decide_personalize(None, ("v1", active), margin, refresh=False).promote
    assert decide_personalize(candidate, ("v1", None), margin, refresh=False).promote


# -- promote and rollback: an infer at once, the cache and the answers follow ----------------


runner = CliRunner()


async def cli(*args: str) -> Any:
    return await asyncio.to_thread(runner.invoke, app, list(args), env={"COLUMNS": "200"})


async def infer_ticks(settings: Settings) -> list[ScheduleTick]:
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, settings)
    )
    ticks = [ScheduleTick.model_validate_json(record.value) for record in records]
    return [t for t in ticks if t.kind == "infer"]


async def served(pool: asyncpg.Pool, settings: Settings) -> tuple[str | None, str | None]:
    """The model version of the current cache generation (every cached row's), and of the
    answer for one customer (the engine is not running: the cache answers)."""
    version = await cache.current_model_version(pool)
    async with asgi_client(create_app(settings)) as client:
        answer = await client.get("/v1/users/late1/recommendations", params={"limit": 3})
    assert answer.status_code == 200, answer.text
    assert answer.json()["source"] == "cache"
    return version, answer.json()["model_version"]


async def test_promote_and_rollback_start_an_infer_the_cache_and_answers_follow(
    cli_env: Settings, pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_regions_and_pairs(pool)
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "itemknn"
    first = (await retrain(pool, settings)).version
    settings.train_recipes = "regional-popularity"
    second = (await retrain(pool, settings)).version  # refused: a candidate
    async with running(BatchWorker(settings)):
        promoted = await cli("promote", second)
        assert promoted.exit_code == 0, promoted.output
        [after_promote] = await infer_ticks(settings)
        assert after_promote.tick_id in promoted.output
        done = await eventually(lambda: finished(pool, after_promote.tick_id), timeout=60)
        assert done["status"] == "ok" and done["version"] == second, done
        assert await served(pool, settings) == (second, second)

        rolled = await cli("rollback")
        assert rolled.exit_code == 0, rolled.output
        [_, after_rollback] = await infer_ticks(settings)
        done = await eventually(lambda: finished(pool, after_rollback.tick_id), timeout=60)
        assert done["status"] == "ok" and done["version"] == first, done
        assert await served(pool, settings) == (first, first)
