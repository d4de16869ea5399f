"""The Personalize control plane as AWS mode uses it: the settings it needs, and its jobs
started and then polled (with backoff, up to a timeout) until they are ACTIVE or failed."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from mgrecs.common.artifacts import ArtifactStore, S3Store, open_store
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings

log = get_logger(__name__)

FAILED = {"CREATE FAILED", "CREATE STOPPED", "CREATE STOPPING"}
"""Statuses a job does not come back from."""

DATASETS = {
    "interactions": "personalize_interactions_dataset_arn",
    "items": "personalize_items_dataset_arn",
    "users": "personalize_users_dataset_arn",
}
"""Each exported dataset and the setting naming the Personalize dataset it is imported into."""

REQUIRED = (
    "personalize_role_arn",
    "personalize_dataset_group_arn",
    *DATASETS.values(),
    "personalize_user_solution_arn",
    "personalize_similar_solution_arn",
)


class AwsModeMisconfigured(Exception):
    """A setting AWS mode needs is missing, or the artifact store is not in S3."""


class PersonalizeJobFailed(Exception):
    """A Personalize job ended failed (its reason is in the message), or never ended in time."""


def s3_store(settings: Settings) -> S3Store:
    """The artifact store, which must be in S3 (Personalize reads and writes only there);
    raises AwsModeMisconfigured naming every missing setting."""
    missing = [name for name in REQUIRED if not getattr(settings, name)]
    if missing:
        names = ", ".join(f"MGRECS_{name.upper()}" for name in missing)
        raise AwsModeMisconfigured(f"AWS mode needs {names}")
    store: ArtifactStore = open_store(settings)
    if not isinstance(store, S3Store):
        raise AwsModeMisconfigured(
            f"AWS mode needs an s3:// artifact store (MGRECS_ARTIFACT_STORE_URL), not {store.url}"
        )
    return store


T = TypeVar("T")


async def together(*jobs: Coroutine[Any, Any, T]) -> list[T]:
    """Run side by side; the first failure cancels the others and is raised as it is (not
    wrapped in a group), so the tick records its message."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(job) for job in jobs]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


Describe = Callable[[], Awaitable[dict[str, Any]]]
"""One Describe call, returning the job's description (with its `status`)."""


async def wait_active(
    describe: Describe,
    kind: str,
    arn: str,
    settings: Settings,
    status_of: Callable[[dict[str, Any]], str] = lambda job: str(job["status"]),
) -> dict[str, Any]:
    """Poll until the job is ACTIVE and return its description; the wait doubles after each
    poll, up to `personalize_poll_max_seconds`. Raises PersonalizeJobFailed when it fails or
    is still running after `personalize_job_timeout_hours`.

    Logs what an operator follows a job by (docs/operations.md, AWS mode): `aws_job_status`
    at each status change (the first one included) with the job's kind and ARN, and
    `aws_job_failed` with Personalize's `failureReason`, or on the timeout."""
    delay = settings.personalize_poll_seconds
    started = time.monotonic()
    deadline = started + settings.personalize_job_timeout_hours * 3600
    previous: str | None = None
    while True:
        job = await describe()
        status = status_of(job)
        if status != previous:
            log.info(
                "aws_job_status",
                job=kind,
                arn=arn,
                status=status,
                previous=previous,
                seconds=round(time.monotonic() - started, 1),
            )
            previous = status
        if status == "ACTIVE":
            return job
        if status in FAILED:
            reason = str(job.get("failureReason") or "no reason given")
            log.error("aws_job_failed", job=kind, arn=arn, status=status, failure_reason=reason)
            raise PersonalizeJobFailed(f"{kind} {arn} ended {status}: {reason}")
        if time.monotonic() + delay > deadline:
            hours = settings.personalize_job_timeout_hours
            log.error(
                "aws_job_failed",
                job=kind,
                arn=arn,
                status=status,
                failure_reason=f"still {status} after {hours} hours",
            )
            raise PersonalizeJobFailed(f"{kind} {arn} still {status} after {hours} hours")
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.personalize_poll_max_seconds)


async def wait_import(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        found = await client.describe_dataset_import_job(datasetImportJobArn=arn)
        return dict(found["datasetImportJob"])

    return await wait_active(describe, "dataset import job", arn, settings)


async def wait_solution_version(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        found = await client.describe_solution_version(solutionVersionArn=arn)
        return dict(found["solutionVersion"])

    return await wait_active(describe, "solution version", arn, settings)


async def wait_batch_job(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        found = await client.describe_batch_inference_job(batchInferenceJobArn=arn)
        return dict(found["batchInferenceJob"])

    return await wait_active(describe, "batch inference job", arn, settings)


def _campaign_status(campaign: dict[str, Any]) -> str:
    """A campaign being updated stays ACTIVE itself: its update's status tells."""
    update = campaign.get("latestCampaignUpdate")
    if update and update.get("status") != "ACTIVE":
        campaign["failureReason"] = update.get("failureReason")
        return str(update["status"])
    return str(campaign["status"])


async def wait_campaign(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    """A campaign created or updated (UpdateCampaign), until it serves the new version."""

    async def describe() -> dict[str, Any]:
        found = await client.describe_campaign(campaignArn=arn)
        return dict(found["campaign"])

    return await wait_active(describe, "campaign", arn, settings, _campaign_status)
