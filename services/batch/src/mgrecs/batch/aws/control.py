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


async def wait_active(describe: Describe, what: str, settings: Settings) -> dict[str, Any]:
    """Poll until the job is ACTIVE and return its description; the wait doubles after each
    poll, up to `personalize_poll_max_seconds`. Raises PersonalizeJobFailed when it fails or
    is still running after `personalize_job_timeout_hours`."""
    delay = settings.personalize_poll_seconds
    deadline = time.monotonic() + settings.personalize_job_timeout_hours * 3600
    while True:
        job = await describe()
        status = job["status"]
        if status == "ACTIVE":
            log.info("personalize_job_active", job=what)
            return job
        if status in FAILED:
            reason = job.get("failureReason") or "no reason given"
            raise PersonalizeJobFailed(f"{what} ended {status}: {reason}")
        if time.monotonic() + delay > deadline:
            raise PersonalizeJobFailed(
                f"{what} still {status} after {settings.personalize_job_timeout_hours} hours"
            )
        log.info("personalize_job_waiting", job=what, status=status, next_poll_seconds=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.personalize_poll_max_seconds)


async def wait_import(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        found = await client.describe_dataset_import_job(datasetImportJobArn=arn)
        return dict(found["datasetImportJob"])

    return await wait_active(describe, f"dataset import job {arn}", settings)


async def wait_solution_version(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        found = await client.describe_solution_version(solutionVersionArn=arn)
        return dict(found["solutionVersion"])

    return await wait_active(describe, f"solution version {arn}", settings)


async def wait_batch_job(client: Any, arn: str, settings: Settings) -> dict[str, Any]:
    async def describe() -> dict[str, Any]:
        found = await client.describe_batch_inference_job(batchInferenceJobArn=arn)
        return dict(found["batchInferenceJob"])

    return await wait_active(describe, f"batch inference job {arn}", settings)
