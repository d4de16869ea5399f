"""AWS mode's campaigns follow the active version: a retrain's promoted version reaches them
(UpdateCampaign, waited on) before it is marked active, the gate's refusal leaves them alone,
a rollback or promote points them at that version's solution versions, one activation waits
for another's (the advisory lock), and a failed update leaves the active version and its
campaigns as they were. Against the fake control plane
(botocore validates every request) and moto's S3; PostgreSQL and the broker are real."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import structlog

from batch.test_aws_mode import GROUP, aws  # noqa: F401  (the fixture)
from mgrecs.batch import activation
from mgrecs.batch.aws import training as aws_training
from mgrecs.batch.aws.campaigns import ACTIVATION_LOCK, CampaignUpdateFailed
from mgrecs.batch.aws.control import AwsModeMisconfigured
from mgrecs.common.settings import Settings
from mgrecs.store.model_versions import ModelVersion
from support.fake_personalize import ARN, PERSONALIZED_RANKING_RECIPE, FakePersonalize
from support.helpers import eventually

RANKING_SOLUTION = f"{ARN}:solution/mgrecs-ranking"
CAMPAIGNS = {
    "user_campaign_arn": "user_solution_version_arn",
    "similar_campaign_arn": "similar_solution_version_arn",
    "ranking_campaign_arn": "ranking_solution_version_arn",
}


@pytest.fixture
async def ranked(
    aws: tuple[Settings, FakePersonalize],  # noqa: F811
) -> AsyncIterator[tuple[Settings, FakePersonalize]]:
    """AWS mode with the personalized-ranking solution configured too, as provisioned."""
    settings, fake = aws
    fake.solutions[RANKING_SOLUTION] = (GROUP, PERSONALIZED_RANKING_RECIPE)
    yield settings.model_copy(update={"personalize_ranking_solution_arn": RANKING_SOLUTION}), fake


def serving(settings: Settings, fake: FakePersonalize) -> dict[str, str]:
    """The solution version each campaign serves, by the version-metrics key naming it."""
    return {key: fake.serving(getattr(settings, setting)) for setting, key in CAMPAIGNS.items()}


def versions_of(model: ModelVersion) -> dict[str, str]:
    return {key: model.metrics[key] for key in CAMPAIGNS.values()}


async def active(pool: asyncpg.Pool) -> str:
    return str(await pool.fetchval("SELECT version FROM model_versions WHERE active"))


async def test_a_retrain_moves_the_three_campaigns_to_its_solution_versions(
    purchases: None, pool: asyncpg.Pool, ranked: tuple[Settings, FakePersonalize]
) -> None:
    settings, fake = ranked
    # The first retrain: provision left the campaigns pending, the retrain creates them.
    first = await aws_training.retrain(pool, settings)
    trained = {job.request["solutionArn"]: job for job in fake.solution_versions.values()}
    assert set(trained) == {
        settings.personalize_user_solution_arn,
        settings.personalize_similar_solution_arn,
        RANKING_SOLUTION,
    }
    assert first.metrics["ranking_solution_version_arn"] == trained[RANKING_SOLUTION].arn
    assert set(first.metrics["other_solution_metrics"]) == {"similar", "ranking"}
    assert fake.calls.count("CreateCampaign") == 3
    assert {job.request["minProvisionedTPS"] for job in fake.campaigns.values()} == {1}
    assert serving(settings, fake) == versions_of(first)
    assert await active(pool) == first.version

    # A better one: each campaign updated to its new solution version, waited on, logged.
    fake.ndcg_at_10 = 0.3
    with structlog.testing.capture_logs() as logs:
        second = await aws_training.retrain(pool, settings)
    assert fake.calls.count("UpdateCampaign") == 3
    assert serving(settings, fake) == versions_of(second)
    assert set(versions_of(second).values()).isdisjoint(versions_of(first).values())
    assert await active(pool) == second.version
    user_campaign = settings.user_campaign_arn
    followed = [(e["event"], e.get("status")) for e in logs if e.get("arn") == user_campaign]
    assert followed == [
        ("aws_campaign_update_started", None),
        ("aws_job_status", "CREATE IN_PROGRESS"),
        ("aws_job_status", "ACTIVE"),
    ]

    # A refresh trains the user solution only: only its campaign moves.
    refreshed = await aws_training.refresh(pool, settings)
    assert fake.calls.count("UpdateCampaign") == 4
    assert serving(settings, fake) == {
        **versions_of(second),
        "user_solution_version_arn": refreshed.model.artifact_uri,
    }
    assert refreshed.promoted and await active(pool) == refreshed.model.version


async def test_the_gate_refusing_a_version_leaves_the_campaigns_alone(
    purchases: None, pool: asyncpg.Pool, ranked: tuple[Settings, FakePersonalize]
) -> None:
    settings, fake = ranked
    fake.ndcg_at_10 = 0.9
    good = await aws_training.retrain(pool, settings)
    calls = len(fake.calls)
    fake.ndcg_at_10 = 0.3
    worse = await aws_training.retrain(pool, settings)

    assert not {"UpdateCampaign", "CreateCampaign"} & set(fake.calls[calls:])
    assert serving(settings, fake) == versions_of(good)
    assert await active(pool) == good.version
    decision = await pool.fetchval(
        "SELECT decision FROM model_versions WHERE version = $1", worse.version
    )
    assert decision.startswith("retrain: does not beat the active version by the margin")


async def test_a_rollback_points_the_campaigns_back_and_a_promote_forward(
    purchases: None, pool: asyncpg.Pool, ranked: tuple[Settings, FakePersonalize]
) -> None:
    settings, fake = ranked
    first = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.3
    second = await aws_training.retrain(pool, settings)
    assert serving(settings, fake) == versions_of(second)

    rolled = await activation.rollback(pool, settings)
    assert rolled.version == first.version and rolled.infer is not None
    assert serving(settings, fake) == versions_of(first)
    assert await active(pool) == first.version

    await activation.promote(pool, settings, second.version, "promoted by an operator")
    assert serving(settings, fake) == versions_of(second)
    assert await active(pool) == second.version
    assert fake.calls.count("UpdateCampaign") == 9  # three each: retrain, rollback, promote


async def test_a_failed_campaign_update_leaves_the_active_version_and_its_campaigns(
    purchases: None, pool: asyncpg.Pool, ranked: tuple[Settings, FakePersonalize]
) -> None:
    settings, fake = ranked
    first = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.3
    fake.fail["UpdateCampaign"] = "Insufficient provisioned TPS quota"
    with pytest.raises(
        CampaignUpdateFailed,
        match=f"back on {first.version}.*ended CREATE FAILED: Insufficient provisioned TPS",
    ):
        await aws_training.retrain(pool, settings)

    # One update failed, the two that went through were pointed back: nothing changed.
    assert fake.calls.count("UpdateCampaign") == 5
    assert serving(settings, fake) == versions_of(first)
    assert await active(pool) == first.version
    second = await pool.fetchrow(
        "SELECT version, decision, metrics FROM model_versions WHERE NOT active"
    )
    assert second["decision"].startswith("retrain: beats the active version")
    assert "; not promoted: the campaigns were not moved" in second["decision"]

    # The candidate can be promoted once the campaigns can take it.
    await activation.promote(pool, settings, second["version"], "promoted by an operator")
    assert await active(pool) == second["version"]
    assert serving(settings, fake) == {key: second["metrics"][key] for key in CAMPAIGNS.values()}


async def test_a_campaign_created_under_another_arn_than_configured_is_refused(
    purchases: None, pool: asyncpg.Pool, ranked: tuple[Settings, FakePersonalize]
) -> None:
    settings, fake = ranked
    elsewhere = "arn:aws:personalize:eu-west-1:000000000000:campaign/mgrecs-user"
    settings = settings.model_copy(update={"user_campaign_arn": elsewhere})
    with pytest.raises(AwsModeMisconfigured, match="set its MGRECS_\\*_CAMPAIGN_ARN"):
        await aws_training.retrain(pool, settings)
    assert await pool.fetchval("SELECT count(*) FROM model_versions WHERE active") == 0


async def test_an_activation_waits_while_another_instance_moves_the_campaigns(
    purchases: None, pool: asyncpg.Pool, ranked: tuple[Settings, FakePersonalize]
) -> None:
    """AWS refuses a campaign update while one is under way: while another instance holds
    the activation lock, a promote calls nothing and changes nothing; once it is released,
    the promote moves the campaigns and only then marks its version active."""
    settings, fake = ranked
    first = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.3
    second = await aws_training.retrain(pool, settings)
    async with pool.acquire() as other:
        await other.execute("SELECT pg_advisory_lock(hashtext($1))", ACTIVATION_LOCK)
        calls = len(fake.calls)
        promoting = asyncio.create_task(
            activation.promote(pool, settings, first.version, "promoted by an operator")
        )

        async def waiting_for_the_lock() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM pg_locks JOIN pg_database d ON d.oid = database"
                    " WHERE locktype = 'advisory' AND NOT granted"
                    " AND d.datname = current_database()"
                )
            )

        await eventually(waiting_for_the_lock)
        assert fake.calls[calls:] == []
        assert serving(settings, fake) == versions_of(second)
        assert await active(pool) == second.version
        await other.execute("SELECT pg_advisory_unlock(hashtext($1))", ACTIVATION_LOCK)
    await promoting

    assert fake.calls.count("UpdateCampaign") == 6
    assert serving(settings, fake) == versions_of(first)
    assert await active(pool) == first.version
