"""AWS mode: retrain, refresh and infer driving Personalize. S3 is a moto server; the
Personalize control plane, which moto does not serve, is `fake_personalize` (it reads and
writes the moto S3 like the real service); PostgreSQL and the broker are real."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import structlog
from typer.testing import CliRunner

from mgrecs.api.app import create_app
from mgrecs.batch.aws import inference as aws_inference
from mgrecs.batch.aws import training as aws_training
from mgrecs.batch.aws.control import AwsModeMisconfigured, PersonalizeJobFailed
from mgrecs.batch.buy_again import fit_buy_again
from mgrecs.batch.dataset import load_lines
from mgrecs.batch.worker import BatchWorker
from mgrecs.cli.embedded import free_port
from mgrecs.cli.main import app
from mgrecs.common import topics, usage
from mgrecs.common.schemas import ScheduleTick
from mgrecs.common.settings import Settings, get_settings
from mgrecs.common.usage import METER
from mgrecs.store import rules
from support.fake_personalize import (
    ARN,
    SIMILAR_ITEMS_RECIPE,
    TRAINING_HOURS,
    USER_PERSONALIZATION_RECIPE,
    FakePersonalize,
    Job,
)
from support.helpers import asgi_client, eventually, read_topic, running, serve
from support.s3 import s3_bucket
from support.shop import ACTIVE_CUSTOMERS, BOUGHT_PRODUCTS, check_cache_list, insert_orders
from support.ticks import finished, publish, tick

GROUP = f"{ARN}:dataset-group/mgrecs"
DATASET_ARNS = {
    name: f"{ARN}:dataset/mgrecs/{name.upper()}" for name in ("interactions", "items", "users")
}
USER_SOLUTION = f"{ARN}:solution/mgrecs-user"
SIMILAR_SOLUTION = f"{ARN}:solution/mgrecs-similar"
ROLE = "arn:aws:iam::000000000000:role/mgrecs-personalize"
PRODUCTS = [f"p{i}" for i in range(1, 8)]


@pytest.fixture
async def aws(
    settings: Settings,
    s3_endpoint: str,
) -> AsyncIterator[tuple[Settings, FakePersonalize]]:
    """AWS-mode settings (an S3 bucket of its own) and the fake Personalize, serving."""
    bucket = f"mgrecs-{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = settings.model_copy(
        update={
            "batch_mode": "aws",
            "artifact_store_url": f"s3://{bucket}/prod",
            "s3_endpoint_url": s3_endpoint,
            "personalize_control_endpoint_url": f"http://127.0.0.1:{port}",
            "personalize_role_arn": ROLE,
            "personalize_dataset_group_arn": GROUP,
            "personalize_interactions_dataset_arn": DATASET_ARNS["interactions"],
            "personalize_items_dataset_arn": DATASET_ARNS["items"],
            "personalize_users_dataset_arn": DATASET_ARNS["users"],
            "personalize_user_solution_arn": USER_SOLUTION,
            "personalize_similar_solution_arn": SIMILAR_SOLUTION,
            "personalize_poll_seconds": 0.01,
            "personalize_poll_max_seconds": 0.05,
        }
    )
    await s3_bucket(settings, s3_endpoint, bucket)
    fake = FakePersonalize(
        settings,
        {
            USER_SOLUTION: (GROUP, USER_PERSONALIZATION_RECIPE),
            SIMILAR_SOLUTION: (GROUP, SIMILAR_ITEMS_RECIPE),
        },
    )
    async with serve(fake.app, port):
        yield settings, fake


async def cache(pool: asyncpg.Pool) -> tuple[dict[str, Any], dict[str, Any]]:
    users = await pool.fetch("SELECT user_id, recommendations FROM offline_user_recommendations")
    similar = await pool.fetch("SELECT product_id, similar_products FROM offline_similar_items")
    return (
        {row["user_id"]: row["recommendations"] for row in users},
        {row["product_id"]: row["similar_products"] for row in similar},
    )


def fake_output(fake: FakePersonalize, solution_version_arn: str) -> dict[str, Any]:
    """What the fake's last batch job on that solution version wrote, by input id."""
    arn = [
        job.arn
        for job in fake.batch_jobs.values()
        if job.request["solutionVersionArn"] == solution_version_arn
    ][-1]
    return {
        line["input"].get("userId", line["input"].get("itemId")): line["output"]
        for line in fake.outputs[arn]
    }


async def test_retrain_and_infer_round_trip_through_personalize(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    settings, fake = aws
    version = await aws_training.retrain(pool, settings)

    # The three exported datasets were imported from where the export put them.
    bucket = settings.artifact_store_url.removeprefix("s3://").split("/")[0]
    folder = f"s3://{bucket}/prod/datasets/{version.version}"
    assert {
        job.request["datasetArn"]: job.request["dataSource"]["dataLocation"]
        for job in fake.imports.values()
    } == {arn: f"{folder}/{name}.csv" for name, arn in DATASET_ARNS.items()}
    assert {job.status for job in fake.imports.values()} == {"ACTIVE"}
    assert {job.request["roleArn"] for job in fake.imports.values()} == {ROLE}
    assert version.metrics["datasets"]["interactions"]["uri"] == f"{folder}/interactions.csv"
    assert len(fake.interactions) == version.n_interactions == 16

    # One version of each solution, trained FULL, registered as the active AWS version.
    trained = {job.request["solutionArn"]: job for job in fake.solution_versions.values()}
    assert set(trained) == {USER_SOLUTION, SIMILAR_SOLUTION}
    assert {job.request["trainingMode"] for job in trained.values()} == {"FULL"}
    row = await pool.fetchrow("SELECT * FROM model_versions WHERE active")
    assert (row["version"], row["recipe"]) == (version.version, "aws-personalize")
    assert row["artifact_uri"] == trained[USER_SOLUTION].arn
    assert row["metrics"]["similar_solution_version_arn"] == trained[SIMILAR_SOLUTION].arn
    assert row["metrics"]["solution_metrics"]["coverage"] == 0.5
    assert row["metrics"]["recipe"] == "aws-user-personalization"
    assert (row["n_users"], row["n_items"]) == (7, 7)

    summary = await aws_inference.infer(pool, settings)

    jobs = list(fake.batch_jobs.values())
    assert len(jobs) == 2 and {job.status for job in jobs} == {"ACTIVE"}
    assert {job.request["numResults"] for job in jobs} == {
        settings.recommendations_per_user,
        settings.similar_per_product,
    }
    users, similar = await cache(pool)
    personal = fake_output(fake, trained[USER_SOLUTION].arn)
    assert set(personal) == set(users) == ACTIVE_CUSTOMERS
    for customer, items in users.items():
        check_cache_list(items, settings.recommendations_per_user, set(PRODUCTS))
        assert [i["product_id"] for i in items] == personal[customer]["recommendedItems"]
        assert [i["score"] for i in items] == personal[customer]["scores"]
    # c1 bought p1-p3: the most bought of the rest (p4 three times, p5 and p6 twice).
    assert [i["product_id"] for i in users["c1"]] == ["p4", "p5", "p6"]
    neighbours = fake_output(fake, trained[SIMILAR_SOLUTION].arn)
    assert set(neighbours) == set(similar) == set(PRODUCTS)
    for product, items in similar.items():
        assert [i["product_id"] for i in items] == neighbours[product]["recommendedItems"]
    assert similar["p7"] == []  # never bought: Personalize had nothing for it
    # p4's buyers (c4, c5, c6) also bought p5 and p6 twice and p1 once; no scores from
    # similar-items, so they fall with the rank.
    assert [(i["product_id"], i["score"]) for i in similar["p4"]] == [
        ("p5", 1.0),
        ("p6", 0.666667),
        ("p1", 0.333333),
    ]
    generation = await pool.fetchrow(
        "SELECT generation, model_version, shards FROM cache_generations WHERE state = 'current'"
    )
    assert (generation["generation"], generation["model_version"]) == (
        summary.generation,
        version.version,
    )
    assert (summary.users, summary.products, summary.shards) == (5, 7, 1)


async def test_an_aws_retrain_stores_the_buy_again_statistics_the_api_scores_with(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    """Personalize trains the model; the retrain's buy-again step stores the repurchase
    parameters and statistics of the same purchases with the AWS version, as self-hosted, and
    the api in AWS mode scores the history with them (self-hosted mode has none: defaults)."""
    settings, _ = aws
    version = await aws_training.retrain(pool, settings)

    params = await pool.fetchrow(
        "SELECT * FROM repurchase_params WHERE model_version = $1", version.version
    )
    fitted = fit_buy_again(await load_lines(pool))
    assert params["params"] == fitted.params.as_dict()
    assert params["products"] == len(BOUGHT_PRODUCTS)
    rows = await pool.fetch(
        "SELECT product_id, repeat_rate, interval_days FROM repurchase_stats"
        " WHERE model_version = $1",
        version.version,
    )
    assert {r["product_id"]: (r["repeat_rate"], r["interval_days"]) for r in rows} == {
        product: (pytest.approx(rate), pytest.approx(interval))
        for product, rate, interval in zip(
            fitted.product_ids,
            fitted.stats.repeat_rate,
            fitted.stats.interval_days,
            strict=True,
        )
    }

    # The api in AWS mode scores c1's history (p1-p3) with them; self-hosted has none.
    for mode, scored_with in (("aws", version.version), ("self-hosted", None)):
        app = create_app(settings.model_copy(update={"batch_mode": mode}))
        async with asgi_client(app) as client:
            answer = await client.get("/v1/users/c1/buy-again", params={"limit": 3})
        assert answer.status_code == 200
        body = answer.json()
        assert body["repurchase_version"] == scored_with
        assert {i["product_id"] for i in body["items"]} == {"p1", "p2", "p3"}


async def test_a_refresh_updates_the_user_solution_and_refills_the_cache(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    settings, fake = aws
    first = await aws_training.retrain(pool, settings)
    assert {job.request["importMode"] for job in fake.imports.values()} == {"FULL"}
    retrained = list(fake.interactions)
    # An order ingested after the retrain's export: the refresh adds its line, and only it.
    await insert_orders(pool, [("o9", "c2", "north", 0.5, ["p7"])], [], set())
    # The exclude-purchased filter `mgrecs aws provision` creates, configured.
    purchased = f"{ARN}:filter/mgrecs-exclude-purchased"
    fake.filters[purchased] = Job(purchased, {"datasetGroupArn": GROUP}, status="ACTIVE")
    settings = settings.model_copy(update={"exclude_purchased_filter_arn": purchased})
    refreshed = await aws_training.refresh(pool, settings)

    assert len(fake.imports) == 6
    added = list(fake.imports.values())[3:]
    assert {job.request["importMode"] for job in added} == {"INCREMENTAL"}
    folder = first.metrics["datasets"]["interactions"]["uri"].rsplit("/", 2)[0]
    assert {job.request["dataSource"]["dataLocation"] for job in added} == {
        f"{folder}/{refreshed.model.version}/{name}.csv"
        for name in ("interactions-increment", "items", "users")
    }
    assert fake.interactions == [*retrained, ("c2", "p7")]  # nothing imported twice
    assert refreshed.model.metrics["import_mode"] == "INCREMENTAL"
    assert refreshed.model.metrics["interactions_until"] > first.metrics["interactions_until"]
    update = list(fake.solution_versions.values())[-1]
    assert (update.request["solutionArn"], update.request["trainingMode"]) == (
        USER_SOLUTION,
        "UPDATE",
    )
    assert len(fake.solution_versions) == 3  # the similar-items version is kept
    model = refreshed.model
    assert model.metrics["refresh_of"] == first.version
    assert model.artifact_uri == update.arn
    assert (
        model.metrics["similar_solution_version_arn"]
        == (first.metrics["similar_solution_version_arn"])
    )
    active = await pool.fetchval("SELECT version FROM model_versions WHERE active")
    assert active == model.version and refreshed.promoted
    users, _ = await cache(pool)
    personal = fake_output(fake, update.arn)
    assert {c: [i["product_id"] for i in items] for c, items in users.items()} == {
        c: output["recommendedItems"] for c, output in personal.items()
    }
    assert refreshed.inference.version == model.version
    # The users' batch job leaves out what they bought; the products' has no customer to.
    assert {
        job.request["jobInput"]["s3DataSource"]["path"].rsplit("/", 1)[1]: job.request.get(
            "filterArn"
        )
        for job in fake.batch_jobs.values()
    } == {"users.jsonl": purchased, "items.jsonl": None}
    assert aws_inference.user_filter(settings.model_copy(update={"exclude_purchased": False})) == ""
    stored = await pool.fetch("SELECT model_version FROM repurchase_params")
    assert {r["model_version"] for r in stored} == {first.version, model.version}


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


async def test_the_cli_lists_and_rolls_back_aws_versions(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, fake = aws
    first = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.3  # beats the first's 0.25 by more than the margin
    second = await aws_training.retrain(pool, settings)
    assert await pool.fetchval("SELECT version FROM model_versions WHERE active") == second.version
    monkeypatch.setenv("MGRECS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MGRECS_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("MGRECS_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("MGRECS_BATCH_MODE", "aws")
    # The rollback points the campaigns back: the CLI talks to the fake control plane.
    for name in ("personalize_control_endpoint_url", "personalize_poll_seconds"):
        monkeypatch.setenv(f"MGRECS_{name.upper()}", str(getattr(settings, name)))
    get_settings.cache_clear()
    try:
        listed = await asyncio.to_thread(_cli, "models")
        rolled = await asyncio.to_thread(_cli, "rollback")
        fake.fail["UpdateCampaign"] = "Insufficient provisioned TPS quota"
        refused = await asyncio.to_thread(_cli, "promote", second.version)
    finally:
        get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    # Only AWS versions exist: without the mode's recipe the table would be empty.
    assert "active" in listed.output and "candidate" in listed.output
    assert rolled.exit_code == 0, rolled.output
    active = await pool.fetchrow("SELECT version, recipe FROM model_versions WHERE active")
    assert (active["version"], active["recipe"]) == (first.version, "aws-personalize")
    assert fake.serving(settings.user_campaign_arn) == first.artifact_uri
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.SCHEDULE_TICKS, settings)
    )
    [infer] = [ScheduleTick.model_validate_json(r.value) for r in records]
    assert infer.kind == "infer" and infer.tick_id in rolled.output
    # A campaign that cannot take the version: the promotion is refused, nothing changes.
    assert refused.exit_code == 1, refused.output
    assert "Insufficient provisioned TPS quota" in refused.output
    assert "the active version is unchanged" in refused.output
    assert await pool.fetchval("SELECT version FROM model_versions WHERE active") == first.version
    assert fake.serving(settings.user_campaign_arn) == first.artifact_uri


async def test_the_aws_gate_refuses_a_worse_solution_version(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    settings, fake = aws
    fake.ndcg_at_10 = 0.9
    good = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.3
    worse = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.9 * (1 + settings.promotion_margin)  # exactly at the bar
    level = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = None  # Personalize gave no figure: no evidence against the active one
    unmeasured = await aws_training.retrain(pool, settings)
    fake.ndcg_at_10 = 0.5  # a refresh is the active solution on newer data: it serves
    refreshed = await aws_training.refresh(pool, settings)

    rows = await pool.fetch("SELECT version, active, decision FROM model_versions")
    state = {row["version"]: (row["active"], row["decision"]) for row in rows}
    assert state[good.version][1] == "retrain: first model: Personalize NDCG@10 0.9000"
    assert not state[worse.version][0]
    assert state[worse.version][1].startswith(
        f"retrain: does not beat the active version by the margin: Personalize NDCG@10 0.3000"
        f" vs active {good.version} 0.9000"
    )
    assert state[level.version][1].startswith("retrain: beats the active version")
    assert not state[unmeasured.version][0]
    assert "no NDCG@10 from Personalize" in state[unmeasured.version][1]
    assert refreshed.promoted and state[refreshed.model.version][0]
    assert state[refreshed.model.version][1].startswith(
        f"refresh: the active solution on newer data: NDCG@10 0.5000, active {level.version}"
    )


async def test_the_worker_runs_aws_ticks_and_a_failed_job_keeps_the_cache_serving(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    settings, fake = aws
    retrain_tick, retrain_bytes = tick("retrain")
    infer_tick, infer_bytes = tick("infer")
    failing_tick, failing_bytes = tick("infer")
    await publish(settings, retrain_bytes, infer_bytes)
    async with running(BatchWorker(settings)):
        done = await eventually(lambda: finished(pool, infer_tick.tick_id), timeout=60)
        assert done["status"] == "ok", done
        trained = await finished(pool, retrain_tick.tick_id)
        assert trained is not None and trained["recipe"] == "aws-personalize"
        before = await cache(pool)
        assert set(before[0]) == ACTIVE_CUSTOMERS

        fake.fail["CreateBatchInferenceJob"] = "Insufficient privileges to write to s3://x"
        await publish(settings, failing_bytes)
        failed = await eventually(lambda: finished(pool, failing_tick.tick_id), timeout=60)

    assert failed["status"] == "failed"
    assert failed["error"].startswith("PersonalizeJobFailed: batch inference job ")
    assert "ended CREATE FAILED: Insufficient privileges to write to s3://x" in failed["error"]
    assert await cache(pool) == before
    states = await pool.fetch(
        "SELECT generation, state, error FROM cache_generations ORDER BY generation"
    )
    assert states[-2]["generation"] == done["generation"] and states[-2]["state"] == "current"
    assert states[-1]["state"] == "failed" and "Insufficient privileges" in states[-1]["error"]


async def test_a_failed_training_registers_nothing(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    settings, fake = aws
    fake.fail["CreateSolutionVersion"] = "Not enough interactions"
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(PersonalizeJobFailed, match="ended CREATE FAILED: Not enough interactions"),
    ):
        await aws_training.retrain(pool, settings)
    assert await pool.fetchval("SELECT count(*) FROM model_versions") == 0

    # What an operator follows (docs/operations.md, AWS mode): each job's ARN when it starts,
    # each status change once, and the failure with Personalize's reason.
    failed = next(job for job in fake.solution_versions.values() if job.failure)
    about = [entry for entry in logs if entry.get("arn") == failed.arn]
    assert [(e["event"], e.get("status")) for e in about] == [
        ("aws_solution_version_started", None),
        ("aws_job_status", "CREATE IN_PROGRESS"),
        ("aws_job_status", "CREATE FAILED"),
        ("aws_job_failed", "CREATE FAILED"),
    ]
    assert about[-1]["failure_reason"] == "Not enough interactions"
    assert about[-1]["job"] == "solution version" and about[-1]["log_level"] == "error"
    for job in fake.imports.values():
        statuses = [e.get("status") for e in logs if e.get("arn") == job.arn]
        assert statuses == [None, "CREATE IN_PROGRESS", "ACTIVE"]  # started, then changes


async def test_aws_mode_refuses_missing_settings_a_local_store_and_another_group(
    pool: asyncpg.Pool, aws: tuple[Settings, FakePersonalize]
) -> None:
    settings, fake = aws
    with pytest.raises(AwsModeMisconfigured, match="MGRECS_PERSONALIZE_ROLE_ARN"):
        await aws_training.retrain(pool, settings.model_copy(update={"personalize_role_arn": ""}))
    local = settings.model_copy(update={"artifact_store_url": "/tmp/mgrecs-store"})
    with pytest.raises(AwsModeMisconfigured, match="s3:// artifact store"):
        await aws_training.retrain(pool, local)
    other_group = settings.model_copy(update={"personalize_dataset_group_arn": f"{GROUP}-other"})
    with pytest.raises(AwsModeMisconfigured, match="belongs to dataset group"):
        await aws_training.retrain(pool, other_group)
    assert not fake.imports and not fake.solution_versions  # checked before any work


async def test_an_aws_infer_leaves_the_filtered_products_out(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    """The business rules' filters in force when the run writes apply as in self-hosted mode:
    Personalize is asked for extra candidates, the filtered product is in no cached list."""
    settings, fake = aws
    await aws_training.retrain(pool, settings)
    await rules.create_rule(pool, rules.RuleFields("filter", target={"products": ["p4"]}), "t")
    await aws_inference.infer(pool, settings)
    asked = {job.request["numResults"] for job in fake.batch_jobs.values()}
    extra = 1 + settings.rules_extra_candidates
    assert asked == {
        round(settings.recommendations_per_user * extra),
        round(settings.similar_per_product * extra),
    }
    users, similar = await cache(pool)
    assert set(users) == ACTIVE_CUSTOMERS
    for items in [*users.values(), *similar.values()]:
        assert "p4" not in [i["product_id"] for i in items]
        assert len(items) <= settings.recommendations_per_user
    assert [i["product_id"] for i in users["c1"]][:2] == ["p5", "p6"]


async def test_an_aws_retrain_and_infer_count_what_personalize_bills(
    purchases: None,
    pool: asyncpg.Pool,
    aws: tuple[Settings, FakePersonalize],
) -> None:
    """Training hours as Personalize reports them, each batch job and its inputs, the bytes
    exported and written to S3 (the cost report, docs/cost.md)."""
    settings, fake = aws
    METER.take("batch")  # what other tests left in this process's meter
    await aws_training.retrain(pool, settings)
    await aws_inference.infer(pool, settings)

    counted = METER.take("batch").counts
    assert counted[(usage.TRAINING_HOURS, "")] == 2 * TRAINING_HOURS  # user and similar
    assert counted[(usage.BATCH_JOBS, "")] == len(fake.batch_jobs) == 2
    inputs = sum(len(fake.outputs[arn]) for arn in fake.batch_jobs)
    assert counted[(usage.BATCH_INPUTS, "")] == inputs == len(ACTIVE_CUSTOMERS) + len(PRODUCTS)
    assert 0 < counted[(usage.DATASET_BYTES, "")] < counted[(usage.STORED_BYTES, "")]
