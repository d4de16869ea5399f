"""The promotion gate and the operator's promote / rollback, on a real database."""

import asyncio
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from mgrecs.batch.promotion import Incumbent, Source, decide
from mgrecs.batch.training import retrain
from mgrecs.cli.main import app
from mgrecs.common.settings import Settings
from support.shop import insert_pairs

runner = CliRunner()


def metrics(chosen: float | None, popularity: float = 0.2) -> dict[str, Any]:
    if chosen is None:
        return {"validation": None, "selection": {"fallback": "too few customers"}}
    return {"validation": {"chosen": {"ndcg@10": chosen}, "popularity": {"ndcg@10": popularity}}}


def active(ndcg: float | None, source: Source = "same period") -> Incumbent:
    return Incumbent("v1", ndcg, source)


@pytest.mark.parametrize(
    ("new", "incumbent", "promote", "says"),
    [
        (metrics(0.3), None, True, "beats popularity: NDCG@10 0.3000 vs popularity 0.2000"),
        (
            metrics(0.3),
            active(0.9, "stored"),  # the case: a 0.3 model no longer replaces a 0.9
            False,
            "does not beat the active version by the margin: NDCG@10 0.3000 vs popularity"
            " 0.2000; active v1 0.9000 (stored), needed 0.9000 (margin 0 %)",
        ),
        (metrics(0.3), active(0.25), True, "beats the active version and popularity"),
        (metrics(0.3), active(None), True, "the active v1 was not validated"),
        (metrics(0.3), active(0.3, "same model"), True, "the active recipe and parameters"),
        (metrics(0.1), None, True, "first model, although it does not beat popularity"),
        (
            {**metrics(0.2), "recipe": "popularity"},  # retrain's floor: nothing beat it
            None,
            True,
            "first model: popularity, no recipe beat it: NDCG@10 0.2000 vs popularity 0.2000",
        ),
        (metrics(0.2), active(0.1), False, "does not beat popularity"),
        (metrics(None), None, True, "the freshest model serves"),
        (metrics(None), active(None, "stored"), True, "the freshest model serves"),
        (metrics(None), active(0.3, "stored"), False, "the validated active one stays"),
    ],
)
def test_decide(new: dict[str, Any], incumbent: Incumbent | None, promote: bool, says: str) -> None:
    decision = decide(new, incumbent)
    assert decision.promote is promote
    assert says in decision.reason


async def states(pool: asyncpg.Pool) -> list[tuple[str, bool]]:
    rows = await pool.fetch("SELECT version, active FROM model_versions ORDER BY trained_at")
    return [(row["version"], row["active"]) for row in rows]


async def test_a_model_that_loses_to_popularity_stays_a_candidate(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_pairs(pool, fillers=12)
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "itemknn"
    good = await retrain(pool, settings)
    settings.train_recipes = "trending"  # what rises lately: the pairs are what matters here
    weak = await retrain(pool, settings)

    assert await states(pool) == [(good.version, True), (weak.version, False)]
    decision = await pool.fetchval(
        "SELECT decision FROM model_versions WHERE version = $1", weak.version
    )
    assert decision.startswith("does not beat popularity")


async def cli(*args: str) -> Any:
    """Run the CLI in a thread (its commands start their own event loop), on a console wide
    enough that no status is cut short."""
    return await asyncio.to_thread(runner.invoke, app, list(args), env={"COLUMNS": "200"})


async def test_operator_promotes_and_rolls_back(
    cli_env: Settings, pool: asyncpg.Pool, settings: Settings
) -> None:
    await insert_pairs(pool, fillers=12)
    settings.train_budget_seconds = 5.0
    settings.train_recipes = "itemknn"
    first = (await retrain(pool, settings)).version
    settings.train_recipes = "trending"
    second = (await retrain(pool, settings)).version

    listed = await cli("models")
    assert listed.exit_code == 0, listed.output
    assert "active" in listed.output and "candidate" in listed.output

    promoted = await cli("promote", second)
    assert promoted.exit_code == 0, promoted.output
    assert await states(pool) == [(first, False), (second, True)]

    rolled = await cli("rollback")
    assert rolled.exit_code == 0, rolled.output
    assert first in rolled.output
    assert await states(pool) == [(first, True), (second, False)]

    unknown = await cli("promote", "no-such-version")
    assert unknown.exit_code == 2
    assert "no-such-version" in unknown.output
