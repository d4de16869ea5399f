"""AWS-mode infer: Personalize batch inference jobs score every active customer (the
user-personalization solution version) and every catalogue product (the similar-items one),
and their output, read back from S3, becomes a new cache generation.

The input is JSON lines in the artifact store (`inference/g<generation>/users.jsonl`, one
`{"userId": ...}` a line; `items.jsonl`, one `{"itemId": ...}`); Personalize writes
`<input>.out` under the output folder, one `{"input", "output": {"recommendedItems",
"scores"}, "error"}` a line. The generation is written in one transaction and made current
in it, like a self-hosted shard: a failed job leaves the previous generation serving.
"""

import asyncio
import json
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from mgrecs.batch import cache, generations
from mgrecs.batch.aws.control import s3_store, together, wait_batch_job
from mgrecs.batch.dataset import load_products
from mgrecs.batch.drift import check_drift_logged
from mgrecs.batch.inference import InferenceSummary
from mgrecs.batch.metrics import JOB_SECONDS
from mgrecs.batch.rules import current_filters
from mgrecs.batch.shards import WORKER_NAME
from mgrecs.batch.steps import Steps
from mgrecs.common.artifacts import S3Store
from mgrecs.common.logging import get_logger
from mgrecs.common.personalize import control_client
from mgrecs.common.settings import Settings
from mgrecs.common.usage import BATCH_INPUTS, BATCH_JOBS, METER
from mgrecs.engine.records import Scored
from mgrecs.engine.user_lists import PERSONAL_REASON
from mgrecs.store import cache_generations
from mgrecs.store.cache_generations import Generation, GenerationFailed, ShardCounts
from mgrecs.store.customers import active_customer_regions
from mgrecs.store.model_versions import AWS_RECIPE, ModelVersion, active_model

log = get_logger(__name__)


@dataclass(frozen=True)
class BatchOutput:
    lists: dict[str, list[Scored]]
    errors: int
    """Input lines Personalize answered with an error (left out of the cache)."""


def _scored(items: list[str], scores: list[float] | None, reason: str) -> list[Scored]:
    """Personalize's scores when it gives them (user-personalization does), otherwise
    scores falling with the rank, so the cache's lists stay best first in 0-1."""
    if scores is not None and len(scores) == len(items):
        return [
            Scored(item, round(min(max(float(s), 0.0), 1.0), 6), reason)
            for item, s in zip(items, scores, strict=True)
        ]
    return [
        Scored(item, round(1 - rank / len(items), 6), reason) for rank, item in enumerate(items)
    ]


def parse_output(path: Path, key: str) -> BatchOutput:
    """Read a batch inference job's output file (runs in a thread)."""
    lists: dict[str, list[Scored]] = {}
    errors = 0
    with path.open() as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            wanted = str(record["input"][key])
            if record.get("error"):
                errors += 1
                continue
            output = record["output"]
            reason = PERSONAL_REASON if key == "userId" else f"similar to {wanted}"
            lists[wanted] = _scored(output["recommendedItems"], output.get("scores"), reason)
    return BatchOutput(lists, errors)


def _write_input(path: Path, key: str, ids: list[str]) -> None:
    with path.open("w") as handle:
        handle.writelines(json.dumps({key: value}) + "\n" for value in ids)


@dataclass(frozen=True)
class BatchJob:
    name: str
    key: str
    solution_version_arn: str
    ids: list[str]
    num_results: int
    filter_arn: str = ""
    """The Personalize filter the job applies (empty: none)."""


async def _run(
    client: Any, store: S3Store, settings: Settings, generation: int, job: BatchJob
) -> BatchOutput:
    """Input to S3, the batch inference job to ACTIVE, its output back from S3."""
    if not job.ids:
        return BatchOutput({}, 0)
    folder = f"inference/g{generation}"
    with tempfile.TemporaryDirectory(prefix="mgrecs-aws") as workdir:
        local = Path(workdir) / f"{job.name}.jsonl"
        await asyncio.to_thread(_write_input, local, job.key, job.ids)
        input_uri = await store.put(local, f"{folder}/{job.name}.jsonl")
        created = await client.create_batch_inference_job(
            jobName=f"mgrecs-g{generation}-{job.name}-{secrets.token_hex(3)}",
            solutionVersionArn=job.solution_version_arn,
            numResults=job.num_results,
            jobInput={"s3DataSource": {"path": input_uri}},
            jobOutput={"s3DataDestination": {"path": f"{store.url}/{folder}/{job.name}-out/"}},
            roleArn=settings.personalize_role_arn,
            **({"filterArn": job.filter_arn} if job.filter_arn else {}),
        )
        arn = str(created["batchInferenceJobArn"])
        METER.add("batch", BATCH_JOBS)
        METER.add("batch", BATCH_INPUTS, len(job.ids))
        log.info(
            "aws_batch_job_started",
            arn=arn,
            name=job.name,
            inputs=len(job.ids),
            solution_version=job.solution_version_arn,
            filter=job.filter_arn or None,
        )
        await wait_batch_job(client, arn, settings)
        output = Path(workdir) / "output.jsonl"
        await store.get(f"{folder}/{job.name}-out/{job.name}.jsonl.out", output)
        return await asyncio.to_thread(parse_output, output, job.key)


def user_filter(settings: Settings) -> str:
    """The user-personalization job's filter: what the customer bought left out, as the
    self-hosted cache does, when `exclude_purchased` and the filter is configured. The
    similar-items job gets none: its input names a product, no customer to filter for."""
    return settings.exclude_purchased_filter_arn if settings.exclude_purchased else ""


async def _score(
    pool: asyncpg.Pool, settings: Settings, model: ModelVersion, generation: Generation
) -> tuple[BatchOutput, BatchOutput]:
    """Both batch inference jobs, side by side."""
    store = s3_store(settings)
    assert generation.active_since is not None
    regions = await active_customer_regions(pool, generation.active_since)
    filters = await current_filters(pool, regions, settings.rules_extra_candidates)
    users = BatchJob(
        "users",
        "userId",
        model.metrics["user_solution_version_arn"],
        sorted(regions),
        filters.candidates(settings.recommendations_per_user),
        user_filter(settings),
    )
    items = BatchJob(
        "items",
        "itemId",
        model.metrics["similar_solution_version_arn"],
        [product.product_id for product in await load_products(pool)],
        filters.candidates(settings.similar_per_product),
    )
    async with control_client(settings) as client:
        found = await together(
            _run(client, store, settings, generation.generation, users),
            _run(client, store, settings, generation.generation, items),
        )
    # The business rules' filters in force now (mgrecs.batch.rules), as the self-hosted run.
    return (
        BatchOutput(
            filters.users(found[0].lists, settings.recommendations_per_user), found[0].errors
        ),
        BatchOutput(filters.similar(found[1].lists, settings.similar_per_product), found[1].errors),
    )


async def _write(
    pool: asyncpg.Pool, generation: int, users: BatchOutput, similar: BatchOutput, seconds: float
) -> None:
    """The whole generation in one transaction, which makes it current."""
    async with pool.acquire() as conn, conn.transaction():
        if not await cache_generations.claim_shard(conn, generation, 0):
            raise GenerationFailed(f"generation {generation} is no longer building")
        await cache.write_slice(
            conn,
            generation,
            users.lists,
            similar.lists,
            updated_at=datetime.now(UTC).replace(tzinfo=None),
        )
        await generations.complete_shard(
            conn,
            generation,
            0,
            WORKER_NAME,
            ShardCounts(len(users.lists), users.errors, len(similar.lists)),
            round(seconds, 3),
        )


async def _start(
    pool: asyncpg.Pool, settings: Settings, tick_id: str | None
) -> tuple[ModelVersion, Generation]:
    """A new one-shard generation for the active AWS version (raises NoActiveModel when
    none); one a redelivered tick had left building is failed (its jobs are not resumed)."""
    model = await active_model(pool, AWS_RECIPE)
    if tick_id is not None:
        leftover = await cache_generations.building_for_tick(pool, tick_id)
        if leftover is not None:
            await generations.fail(pool, leftover.generation, "superseded by the tick's retry")
    await generations.fail_stale(pool, timedelta(hours=settings.infer_timeout_hours))
    generation = await generations.create(
        pool,
        tick_id=tick_id,
        model_version=model.version,
        artifact_uri=model.artifact_uri,
        shards=1,
        active_since=datetime.now(UTC) - timedelta(days=settings.active_days),
    )
    return model, generation


async def infer(
    pool: asyncpg.Pool,
    settings: Settings,
    steps: Steps | None = None,
    *,
    tick_id: str | None = None,
) -> InferenceSummary:
    """Fill a new cache generation from Personalize's batch inference jobs; steps start,
    batch (the jobs), write and drift. Any failure fails the generation and is raised."""
    steps = steps or Steps(pool)
    started = time.perf_counter()
    with JOB_SECONDS.labels("infer").time():
        async with steps.step("start"):
            model, generation = await _start(pool, settings, tick_id)
        try:
            async with steps.step("batch"):
                users, similar = await _score(pool, settings, model, generation)
            async with steps.step("write"):
                await _write(
                    pool, generation.generation, users, similar, time.perf_counter() - started
                )
        except Exception as exc:
            await generations.fail(pool, generation.generation, f"{type(exc).__name__}: {exc}")
            raise
    await generations.clean(pool, settings.cache_keep_generations)
    async with steps.step("drift"):
        await check_drift_logged(pool, settings)
    built = await cache_generations.get(pool, generation.generation)
    assert built is not None
    summary = InferenceSummary.of(built, model.version, time.perf_counter() - started)
    log.info("aws_infer_done", state=built.state, **asdict(summary))
    return summary
