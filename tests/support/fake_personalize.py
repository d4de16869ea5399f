"""A fake of the AWS Personalize control plane (which moto does not serve), for AWS mode's
tests: the JSON 1.1 protocol botocore speaks (`POST /`, `X-Amz-Target:
AmazonPersonalize.<Operation>`), for the calls AWS mode makes.

Jobs start CREATE PENDING and move one status per Describe call (CREATE IN_PROGRESS, then
ACTIVE, or CREATE FAILED when a failure was asked for). They do real work against S3 (the
moto server): an import job reads its CSV, a solution version keeps the interactions last
imported, and a batch inference job reads its JSON lines input and writes the output, so a
test sees the whole round trip. The rankings are deterministic: for a customer, the most
bought products they have not bought (scored by share of purchases); for a product, the
products bought by the same customers, most shared first (no scores, as similar-items).
"""

import csv
import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import aioboto3
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mgrecs.common.settings import Settings

ARN = "arn:aws:personalize:us-east-1:000000000000"
SIMILAR_ITEMS_RECIPE = "arn:aws:personalize:::recipe/aws-similar-items"
USER_PERSONALIZATION_RECIPE = "arn:aws:personalize:::recipe/aws-user-personalization"

Interactions = list[tuple[str, str]]
"""(user, item) pairs, one per purchase line."""


class FakeError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Job:
    arn: str
    request: dict[str, Any]
    status: str = "CREATE PENDING"
    failure: str | None = None
    """The failureReason it will end with, when one was asked for."""
    interactions: Interactions = field(default_factory=list)
    created: float = field(default_factory=time.time)


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def user_ranking(interactions: Interactions, user: str, k: int) -> tuple[list[str], list[float]]:
    counts = Counter(item for _, item in interactions)
    bought = {item for u, item in interactions if u == user}
    ranked = sorted((i for i in counts if i not in bought), key=lambda i: (-counts[i], i))[:k]
    total = sum(counts.values())
    return ranked, [round(counts[i] / total, 4) for i in ranked]


def similar_ranking(interactions: Interactions, item: str, k: int) -> list[str]:
    buyers = {u for u, i in interactions if i == item}
    shared = Counter(i for u, i in set(interactions) if u in buyers and i != item)
    return sorted(shared, key=lambda i: (-shared[i], i))[:k]


class FakePersonalize:
    """The fake's state; `app` serves it. Set `fail[operation] = reason` to make the next
    job that operation creates end CREATE FAILED with that reason."""

    def __init__(self, settings: Settings, solutions: dict[str, tuple[str, str]]) -> None:
        """`solutions`: solution ARN -> (dataset group ARN, recipe ARN)."""
        self.settings = settings
        self.solutions = solutions
        self.imports: dict[str, Job] = {}
        self.solution_versions: dict[str, Job] = {}
        self.batch_jobs: dict[str, Job] = {}
        self.interactions: Interactions = []
        """The last interactions CSV imported."""
        self.outputs: dict[str, list[dict[str, Any]]] = {}
        """Output lines written, by batch inference job ARN."""
        self.fail: dict[str, str] = {}
        self.app = FastAPI()
        self.app.post("/")(self._handle)

    def _s3(self) -> Any:
        return aioboto3.Session(
            aws_access_key_id=self.settings.aws_access_key_id,
            aws_secret_access_key=self.settings.aws_secret_access_key,
            region_name=self.settings.aws_region,
        ).client("s3", endpoint_url=self.settings.s3_endpoint_url)

    async def _read(self, uri: str) -> str:
        bucket, key = _split(uri)
        async with self._s3() as s3:
            try:
                found = await s3.get_object(Bucket=bucket, Key=key)
            except s3.exceptions.NoSuchKey as exc:
                raise FakeError("InvalidInputException", f"no object at {uri}") from exc
            return str((await found["Body"].read()).decode())

    async def _write(self, uri: str, text: str) -> None:
        bucket, key = _split(uri)
        async with self._s3() as s3:
            await s3.put_object(Bucket=bucket, Key=key, Body=text.encode())

    async def _handle(self, request: Request) -> JSONResponse:
        operation = request.headers.get("x-amz-target", "").removeprefix("AmazonPersonalize.")
        handler = getattr(self, f"op_{operation}", None)
        if handler is None:
            return self._error("UnknownOperationException", f"the fake has no {operation}")
        try:
            body = await handler(json.loads(await request.body() or b"{}"))
        except FakeError as exc:
            return self._error(exc.kind, str(exc))
        return JSONResponse(body, media_type="application/x-amz-json-1.1")

    @staticmethod
    def _error(kind: str, message: str) -> JSONResponse:
        return JSONResponse(
            {"__type": kind, "message": message},
            status_code=400,
            media_type="application/x-amz-json-1.1",
        )

    def _new(self, jobs: dict[str, Job], operation: str, arn: str, body: dict[str, Any]) -> Job:
        job = Job(arn, body, failure=self.fail.pop(operation, None))
        jobs[arn] = job
        return job

    @staticmethod
    def _get(jobs: dict[str, Job], arn: str) -> Job:
        if arn not in jobs:
            raise FakeError("ResourceNotFoundException", f"{arn} does not exist")
        return jobs[arn]

    async def _advance(self, job: Job, finish: Any) -> None:
        """One status further per Describe call; the job's work is done as it turns ACTIVE."""
        if job.status == "CREATE PENDING":
            job.status = "CREATE IN_PROGRESS"
        elif job.status == "CREATE IN_PROGRESS":
            if job.failure is None:
                try:
                    await finish(job)
                except FakeError as exc:
                    job.failure = str(exc)
            job.status = "ACTIVE" if job.failure is None else "CREATE FAILED"

    @staticmethod
    def _described(job: Job, arn_key: str) -> dict[str, Any]:
        described = {
            **job.request,
            arn_key: job.arn,
            "status": job.status,
            "creationDateTime": job.created,
            "lastUpdatedDateTime": time.time(),
        }
        if job.status == "CREATE FAILED":
            described["failureReason"] = job.failure
        return described

    # -- solutions -------------------------------------------------------------------------

    async def op_DescribeSolution(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = body["solutionArn"]
        if arn not in self.solutions:
            raise FakeError("ResourceNotFoundException", f"{arn} does not exist")
        group, recipe = self.solutions[arn]
        return {
            "solution": {
                "solutionArn": arn,
                "datasetGroupArn": group,
                "recipeArn": recipe,
                "status": "ACTIVE",
            }
        }

    # -- dataset import jobs ---------------------------------------------------------------

    async def op_CreateDatasetImportJob(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = f"{ARN}:dataset-import-job/{body['jobName']}"
        job = self._new(self.imports, "CreateDatasetImportJob", arn, body)
        return {"datasetImportJobArn": job.arn}

    async def _import(self, job: Job) -> None:
        rows = list(
            csv.DictReader(io.StringIO(await self._read(job.request["dataSource"]["dataLocation"])))
        )
        if rows and {"USER_ID", "ITEM_ID"} <= set(rows[0]):
            imported = [(row["USER_ID"], row["ITEM_ID"]) for row in rows]
            if job.request.get("importMode") == "INCREMENTAL":
                self.interactions = self.interactions + imported
            else:
                self.interactions = imported

    async def op_DescribeDatasetImportJob(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._get(self.imports, body["datasetImportJobArn"])
        await self._advance(job, self._import)
        return {"datasetImportJob": self._described(job, "datasetImportJobArn")}

    # -- solution versions -----------------------------------------------------------------

    async def op_CreateSolutionVersion(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["solutionArn"] not in self.solutions:
            raise FakeError("ResourceNotFoundException", f"{body['solutionArn']} does not exist")
        arn = f"{body['solutionArn']}/v{len(self.solution_versions) + 1}"
        job = self._new(self.solution_versions, "CreateSolutionVersion", arn, body)
        job.request.setdefault("trainingMode", "FULL")
        return {"solutionVersionArn": job.arn}

    async def _train(self, job: Job) -> None:
        if not self.interactions:
            raise FakeError("InvalidInputException", "no interactions imported")
        job.interactions = list(self.interactions)

    async def op_DescribeSolutionVersion(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._get(self.solution_versions, body["solutionVersionArn"])
        await self._advance(job, self._train)
        described = self._described(job, "solutionVersionArn")
        described["datasetGroupArn"], described["recipeArn"] = self.solutions[
            job.request["solutionArn"]
        ]
        return {"solutionVersion": described}

    async def op_GetSolutionMetrics(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._get(self.solution_versions, body["solutionVersionArn"])
        return {
            "solutionVersionArn": job.arn,
            "metrics": {"coverage": 0.5, "normalized_discounted_cumulative_gain_at_10": 0.25},
        }

    # -- batch inference jobs --------------------------------------------------------------

    async def op_CreateBatchInferenceJob(self, body: dict[str, Any]) -> dict[str, Any]:
        version = self._get(self.solution_versions, body["solutionVersionArn"])
        if version.status != "ACTIVE":
            raise FakeError("ResourceInUseException", f"{version.arn} is {version.status}")
        arn = f"{ARN}:batch-inference-job/{body['jobName']}"
        job = self._new(self.batch_jobs, "CreateBatchInferenceJob", arn, body)
        job.interactions = version.interactions
        return {"batchInferenceJobArn": job.arn}

    async def _infer(self, job: Job) -> None:
        source = job.request["jobInput"]["s3DataSource"]["path"]
        k = job.request.get("numResults", 25)
        lines = []
        for line in (await self._read(source)).splitlines():
            wanted = json.loads(line)
            if "userId" in wanted:
                items, scores = user_ranking(job.interactions, wanted["userId"], k)
                output: dict[str, Any] = {"recommendedItems": items, "scores": scores}
            else:
                output = {
                    "recommendedItems": similar_ranking(job.interactions, wanted["itemId"], k)
                }
            lines.append({"input": wanted, "output": output, "error": None})
        folder = job.request["jobOutput"]["s3DataDestination"]["path"]
        name = source.rsplit("/", 1)[1]
        await self._write(f"{folder}{name}.out", "".join(json.dumps(line) + "\n" for line in lines))
        self.outputs[job.arn] = lines

    async def op_DescribeBatchInferenceJob(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._get(self.batch_jobs, body["batchInferenceJobArn"])
        await self._advance(job, self._infer)
        return {"batchInferenceJob": self._described(job, "batchInferenceJobArn")}
