"""AWS-mode retrain and refresh: the datasets exported to S3, imported into their Personalize
datasets, a version of each solution trained (a retrain: user-personalization, similar-items
and, when configured, personalized-ranking, FULL; a refresh: user-personalization, UPDATE,
the others kept), registered as one model version in `model_versions` (recipe
`aws-personalize`).

The solutions are checked first (they exist, in the configured dataset group), so a wrong
ARN costs no export. Steps: export (the datasets written to S3 while the purchases are read,
as self-hosted), quality (the same report as self-hosted), import (every import job ACTIVE),
train (every solution version ACTIVE), promote (the gate; the version registered),
buy-again (the repurchase parameters and per-product statistics of the same purchases stored
with the version, as self-hosted: the api's buy-again list scores alike in both modes),
campaigns (a version the gate passes: every campaign moved to its solution versions, then
the version marked active, `campaigns.activate`), and for a refresh infer.
The gate (`promotion.decide_personalize`): a retrain's version serves when Personalize's
NDCG@10 for its user-personalization solution version reaches the active version's by
`MGRECS_PROMOTION_MARGIN` (the three solution versions are one model version: similar-items
and ranking follow that decision, their metrics recorded); a refresh (UPDATE of the active
solution) serves; the metrics are recorded with the version either way.
One retrain or refresh at a time across instances (`mgrecs.store.jobs.retrain_lock`).
"""

import asyncio
import time
from dataclasses import asdict
from typing import Any

import asyncpg

from mgrecs.batch.aws import campaigns
from mgrecs.batch.aws.control import (
    AwsModeMisconfigured,
    s3_store,
    together,
    wait_solution_version,
)
from mgrecs.batch.aws.imports import cut_off, import_datasets, import_sources, last_cut_off
from mgrecs.batch.aws.inference import infer
from mgrecs.batch.buy_again import store_buy_again
from mgrecs.batch.dataset import load_lines, load_products
from mgrecs.batch.export import export_datasets
from mgrecs.batch.metrics import JOB_SECONDS
from mgrecs.batch.promotion import decide_personalize, solution_ndcg
from mgrecs.batch.steps import Steps
from mgrecs.batch.training import NoTrainingData, Refreshed, check_quality, new_version
from mgrecs.common.logging import get_logger
from mgrecs.common.personalize import control_client
from mgrecs.common.settings import Settings
from mgrecs.common.usage import METER, TRAINING_HOURS
from mgrecs.store.jobs import retrain_lock
from mgrecs.store.model_versions import (
    AWS_RECIPE,
    ModelVersion,
    active_model,
    find_active,
    register,
)

log = get_logger(__name__)


SOLUTIONS = (
    "personalize_user_solution_arn",
    "personalize_similar_solution_arn",
    "personalize_ranking_solution_arn",
)
"""The solutions a retrain trains (the ranking one when configured)."""


async def _check_solutions(client: Any, settings: Settings) -> str:
    """The solutions exist and train on the configured dataset group: a wrong ARN fails
    here, before anything is imported or trained. Returns the user-personalization
    solution's recipe (its name, e.g. aws-user-personalization)."""
    recipes = []
    for setting in SOLUTIONS:
        arn = getattr(settings, setting)
        if not arn:
            continue  # only the ranking solution is optional (control.REQUIRED)
        solution = (await client.describe_solution(solutionArn=arn))["solution"]
        if solution.get("datasetGroupArn") != settings.personalize_dataset_group_arn:
            raise AwsModeMisconfigured(
                f"solution {arn} ({setting}) belongs to dataset group"
                f" {solution.get('datasetGroupArn')}, not {settings.personalize_dataset_group_arn}"
            )
        recipes.append(str(solution.get("recipeArn", "-")).rsplit("/", 1)[-1])
    return recipes[0]


async def _solution_version(client: Any, settings: Settings, solution_arn: str, mode: str) -> str:
    created = await client.create_solution_version(solutionArn=solution_arn, trainingMode=mode)
    arn = str(created["solutionVersionArn"])
    log.info("aws_solution_version_started", arn=arn, solution=solution_arn, mode=mode)
    started = time.perf_counter()
    described = await wait_solution_version(client, arn, settings)
    # Personalize's billed training hours when it says them, else the wall time.
    hours = described.get("trainingHours")
    if not isinstance(hours, int | float):
        hours = (time.perf_counter() - started) / 3600
    METER.add("batch", TRAINING_HOURS, float(hours))
    return arn


async def _train(
    pool: asyncpg.Pool, settings: Settings, steps: Steps, refresh_of: ModelVersion | None
) -> ModelVersion:
    """Export to promote (the caller holds the retrain lock). A refresh updates the
    user-personalization solution and keeps the active similar-items solution version."""
    job = "retrain" if refresh_of is None else "refresh"
    store = s3_store(settings)
    started = time.perf_counter()
    with JOB_SECONDS.labels(job).time():
        version = new_version()
        async with control_client(settings) as client:
            recipe = await _check_solutions(client, settings)
            async with steps.step("export"):
                until = await cut_off(pool)
                datasets, lines = await asyncio.gather(
                    export_datasets(pool, store, version, until), load_lines(pool)
                )
            if datasets["interactions"].rows == 0:
                raise NoTrainingData("no purchases in the database yet: nothing to train on")
            async with steps.step("quality"):
                catalogue = [p.product_id for p in await load_products(pool)]
                await check_quality(pool, settings, catalogue)
            async with steps.step("import"):
                since = None if refresh_of is None else await last_cut_off(pool)
                mode, sources = await import_sources(pool, store, version, datasets, since, until)
                imports = await import_datasets(client, settings, version, sources, mode)
            async with steps.step("train"):
                if refresh_of is None:
                    solutions = [getattr(settings, name) for name in SOLUTIONS]
                    trained = await together(
                        *(
                            _solution_version(client, settings, arn, "FULL")
                            for arn in solutions
                            if arn
                        )
                    )
                    user_arn, similar_arn = trained[:2]
                    ranking_arn = trained[2] if len(trained) > 2 else None
                else:
                    user_arn = await _solution_version(
                        client, settings, settings.personalize_user_solution_arn, "UPDATE"
                    )
                    similar_arn = refresh_of.metrics["similar_solution_version_arn"]
                    ranking_arn = refresh_of.metrics.get("ranking_solution_version_arn")
                solution_metrics = await client.get_solution_metrics(solutionVersionArn=user_arn)
                other_metrics = {
                    key: (await client.get_solution_metrics(solutionVersionArn=arn))["metrics"]
                    for key, arn in (("similar", similar_arn), ("ranking", ranking_arn))
                    if arn and refresh_of is None
                }
        metrics: dict[str, Any] = {
            "mode": "aws",
            "recipe": recipe,
            "training_mode": "FULL" if refresh_of is None else "UPDATE",
            "user_solution_version_arn": user_arn,
            "similar_solution_version_arn": similar_arn,
            "ranking_solution_version_arn": ranking_arn,
            "solution_metrics": solution_metrics.get("metrics", {}),
            "other_solution_metrics": other_metrics,
            "dataset_group_arn": settings.personalize_dataset_group_arn,
            "dataset_import_jobs": imports,
            "import_mode": mode,
            "imported": sources,
            "interactions_until": until.isoformat(),
            "datasets": {name: asdict(dataset) for name, dataset in datasets.items()},
        }
        if refresh_of is not None:
            metrics["refresh_of"] = refresh_of.version
        async with steps.step("promote"):
            active = refresh_of or await find_active(pool, AWS_RECIPE)
            decision = decide_personalize(
                solution_ndcg(metrics),
                None if active is None else (active.version, solution_ndcg(active.metrics)),
                settings.promotion_margin,
                refresh=refresh_of is not None,
            )
            reason = f"{job}: {decision.reason}"
            registered = await register(
                pool,
                ModelVersion(
                    version=version,
                    recipe=AWS_RECIPE,
                    artifact_uri=user_arn,
                    n_users=datasets["users"].rows,
                    n_items=datasets["items"].rows,
                    n_interactions=datasets["interactions"].rows,
                    metrics=metrics,
                ),
                promote=False,
                reason=reason,
            )
        async with steps.step("buy-again"):
            await store_buy_again(pool, version, lines)
        if decision.promote:
            async with steps.step("campaigns"):
                await campaigns.activate(pool, settings, registered, reason)
    log.info(
        f"aws_{job}_done",
        version=version,
        user_solution_version=user_arn,
        similar_solution_version=similar_arn,
        ranking_solution_version=ranking_arn,
        promoted=decision.promote,
        decision=decision.reason,
        steps=steps.done,
        seconds=round(time.perf_counter() - started, 3),
    )
    return registered


async def retrain(
    pool: asyncpg.Pool, settings: Settings, steps: Steps | None = None
) -> ModelVersion:
    """Import everything and train both solutions anew (trainingMode FULL); the new version
    becomes active if it passes the gate. Raises AnotherRetrainRunning when a retrain or
    refresh runs elsewhere."""
    async with retrain_lock(pool):
        return await _train(pool, settings, steps or Steps(pool), None)


async def refresh(pool: asyncpg.Pool, settings: Settings, steps: Steps | None = None) -> Refreshed:
    """Import everything, update the active user-personalization solution with it
    (trainingMode UPDATE), then an infer. Raises NoActiveModel before the first retrain."""
    steps = steps or Steps(pool)
    async with retrain_lock(pool):
        active = await active_model(pool, AWS_RECIPE)
        model = await _train(pool, settings, steps, active)
        promoted = (await active_model(pool, AWS_RECIPE)).version == model.version
    async with steps.step("infer"):
        inference = await infer(pool, settings)
    return Refreshed(model, promoted, inference)
