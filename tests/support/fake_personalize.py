"""A fake of the AWS Personalize control plane (which moto does not serve), for AWS mode's
tests: the JSON 1.1 protocol botocore speaks (`POST /`, `X-Amz-Target:
AmazonPersonalize.<Operation>`), for the calls AWS mode makes, `mgrecs aws provision`'s
included (dataset groups, schemas, datasets, event trackers, filters, solutions, campaigns:
each Create answers as AWS does, ResourceAlreadyExistsException for a name taken, and each
resource goes CREATE PENDING → CREATE IN_PROGRESS → ACTIVE over its Describe calls), and
UpdateCampaign (its `latestCampaignUpdate` goes the same way; `fail["UpdateCampaign"]`
makes the next one end CREATE FAILED, the campaign staying on its solution version).

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
PERSONALIZED_RANKING_RECIPE = "arn:aws:personalize:::recipe/aws-personalized-ranking"

Interactions = list[tuple[str, str]]
"""(user, item) pairs, one per purchase line."""


class FakeError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


TRAINING_HOURS = 0.75
"""The `trainingHours` every solution version reports once active."""


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
        self.ndcg_at_10: float | None = 0.25
        """The NDCG@10 GetSolutionMetrics reports for any solution version (None: left out)."""
        # What `mgrecs aws provision` creates, by ARN; schemas have no status (ACTIVE at once).
        self.groups: dict[str, Job] = {}
        self.schemas: dict[str, Job] = {}
        self.datasets: dict[str, Job] = {}
        self.trackers: dict[str, Job] = {}
        self.filters: dict[str, Job] = {}
        self.created_solutions: dict[str, Job] = {}
        self.campaigns: dict[str, Job] = {}
        self.campaign_updates: dict[str, Job] = {}
        """The latest UpdateCampaign of each campaign, by campaign ARN."""
        self.calls: list[str] = []
        """Every operation called, in order."""
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
        self.calls.append(operation)
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
        if arn in self.created_solutions:
            job = self.created_solutions[arn]
            await self._advance(job, self._nothing)
            return {"solution": self._described(job, "solutionArn")}
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

    async def op_CreateSolution(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._active_group(body["datasetGroupArn"])
        if not self._of_group(self.datasets, group.arn):
            raise FakeError("InvalidInputException", f"{group.arn} has no interactions dataset")
        arn = self._unique(self.created_solutions, f"{ARN}:solution/{body['name']}")
        self._new(self.created_solutions, "CreateSolution", arn, body)
        self.solutions[arn] = (group.arn, body["recipeArn"])
        return {"solutionArn": arn}

    async def op_ListSolutions(self, body: dict[str, Any]) -> dict[str, Any]:
        found = self._of_group(self.created_solutions, body.get("datasetGroupArn"))
        return {
            "solutions": [self._summary(job, "solutionArn", "recipeArn", "status") for job in found]
        }

    async def op_ListSolutionVersions(self, body: dict[str, Any]) -> dict[str, Any]:
        versions = [
            job
            for job in self.solution_versions.values()
            if job.request["solutionArn"] == body.get("solutionArn")
        ]
        return {
            "solutionVersions": [
                self._summary(job, "solutionVersionArn", "status", "trainingMode")
                for job in versions
            ]
        }

    # -- what provisioning creates ---------------------------------------------------------

    @staticmethod
    async def _nothing(job: Job) -> None:
        """A resource has no work to do as it turns ACTIVE."""

    @staticmethod
    def _unique(resources: dict[str, Job], arn: str) -> str:
        if arn in resources:
            raise FakeError("ResourceAlreadyExistsException", f"{arn} already exists")
        return arn

    @staticmethod
    def _summary(job: Job, arn_key: str, *keys: str) -> dict[str, Any]:
        """A List call's summary: the name, the ARN, the dates and `keys` of the request
        (or the status)."""
        summary = {
            "name": job.request.get("name"),
            arn_key: job.arn,
            "creationDateTime": job.created,
            "lastUpdatedDateTime": job.created,
        }
        for key in keys:
            summary[key] = job.status if key == "status" else job.request.get(key)
        return summary

    @staticmethod
    def _of_group(resources: dict[str, Job], group: str | None) -> list[Job]:
        return [job for job in resources.values() if job.request["datasetGroupArn"] == group]

    def _active_group(self, arn: str) -> Job:
        group = self._get(self.groups, arn)
        if group.status != "ACTIVE":
            raise FakeError("ResourceInUseException", f"{arn} is {group.status}")
        return group

    async def _describe(
        self, resources: dict[str, Job], body: dict[str, Any], arn_key: str, out: str
    ) -> dict[str, Any]:
        job = self._get(resources, body[arn_key])
        await self._advance(job, self._nothing)
        return {out: self._described(job, arn_key)}

    async def op_CreateDatasetGroup(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = self._unique(self.groups, f"{ARN}:dataset-group/{body['name']}")
        self._new(self.groups, "CreateDatasetGroup", arn, body)
        return {"datasetGroupArn": arn}

    async def op_DescribeDatasetGroup(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._describe(self.groups, body, "datasetGroupArn", "datasetGroup")

    async def op_ListDatasetGroups(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "datasetGroups": [
                self._summary(job, "datasetGroupArn", "status") for job in self.groups.values()
            ]
        }

    async def op_CreateSchema(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = self._unique(self.schemas, f"{ARN}:schema/{body['name']}")
        try:
            json.loads(body["schema"])
        except ValueError as exc:
            raise FakeError("InvalidInputException", f"the schema is not JSON: {exc}") from exc
        self._new(self.schemas, "CreateSchema", arn, body).status = "ACTIVE"
        return {"schemaArn": arn}

    async def op_DescribeSchema(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._get(self.schemas, body["schemaArn"])
        return {"schema": {**job.request, "schemaArn": job.arn, "creationDateTime": job.created}}

    async def op_ListSchemas(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"schemas": [self._summary(job, "schemaArn") for job in self.schemas.values()]}

    async def op_CreateDataset(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._active_group(body["datasetGroupArn"])
        self._get(self.schemas, body["schemaArn"])
        kind = body["datasetType"].upper()
        arn = self._unique(self.datasets, f"{ARN}:dataset/{group.request['name']}/{kind}")
        self._new(self.datasets, "CreateDataset", arn, body)
        return {"datasetArn": arn}

    async def op_DescribeDataset(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._describe(self.datasets, body, "datasetArn", "dataset")

    async def op_ListDatasets(self, body: dict[str, Any]) -> dict[str, Any]:
        found = self._of_group(self.datasets, body.get("datasetGroupArn"))
        return {
            "datasets": [self._summary(job, "datasetArn", "datasetType", "status") for job in found]
        }

    async def op_CreateEventTracker(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._active_group(body["datasetGroupArn"])
        if self._of_group(self.trackers, group.arn):
            raise FakeError("ResourceAlreadyExistsException", f"{group.arn} has a tracker")
        tracking_id = f"tracking-{len(self.trackers) + 1}"
        arn = f"{ARN}:event-tracker/{tracking_id}"
        job = self._new(self.trackers, "CreateEventTracker", arn, body)
        job.request = {**body, "trackingId": tracking_id, "accountId": "000000000000"}
        return {"eventTrackerArn": arn, "trackingId": tracking_id}

    async def op_DescribeEventTracker(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._describe(self.trackers, body, "eventTrackerArn", "eventTracker")

    async def op_ListEventTrackers(self, body: dict[str, Any]) -> dict[str, Any]:
        found = self._of_group(self.trackers, body.get("datasetGroupArn"))
        return {"eventTrackers": [self._summary(job, "eventTrackerArn", "status") for job in found]}

    async def op_CreateFilter(self, body: dict[str, Any]) -> dict[str, Any]:
        self._active_group(body["datasetGroupArn"])
        arn = self._unique(self.filters, f"{ARN}:filter/{body['name']}")
        self._new(self.filters, "CreateFilter", arn, body)
        return {"filterArn": arn}

    async def op_DescribeFilter(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._describe(self.filters, body, "filterArn", "filter")

    async def op_ListFilters(self, body: dict[str, Any]) -> dict[str, Any]:
        found = self._of_group(self.filters, body.get("datasetGroupArn"))
        return {
            "Filters": [
                self._summary(job, "filterArn", "datasetGroupArn", "status") for job in found
            ]
        }

    async def op_CreateCampaign(self, body: dict[str, Any]) -> dict[str, Any]:
        version = self._get(self.solution_versions, body["solutionVersionArn"])
        if version.status != "ACTIVE":
            raise FakeError("ResourceInUseException", f"{version.arn} is {version.status}")
        arn = self._unique(self.campaigns, f"{ARN}:campaign/{body['name']}")
        self._new(self.campaigns, "CreateCampaign", arn, body)
        return {"campaignArn": arn}

    async def op_DescribeCampaign(self, body: dict[str, Any]) -> dict[str, Any]:
        """The campaign, and its latest update (`latestCampaignUpdate`) once it had one: an
        update goes CREATE PENDING → CREATE IN_PROGRESS → ACTIVE (or CREATE FAILED) over the
        Describe calls, and the campaign serves its solution version as it turns ACTIVE."""
        job = self._get(self.campaigns, body["campaignArn"])
        await self._advance(job, self._nothing)
        described = self._described(job, "campaignArn")
        update = self.campaign_updates.get(job.arn)
        if update is not None:
            await self._advance(update, self._switch)
            latest = {
                key: value
                for key, value in self._described(update, "campaignArn").items()
                if key not in {"campaignArn", "name"}
            }
            described["latestCampaignUpdate"] = latest
        return {"campaign": described}

    async def _switch(self, update: Job) -> None:
        """A campaign update done: the campaign serves the new solution version."""
        self.campaigns[update.arn].request["solutionVersionArn"] = update.request[
            "solutionVersionArn"
        ]

    async def op_UpdateCampaign(self, body: dict[str, Any]) -> dict[str, Any]:
        """As AWS: the campaign must be ACTIVE with no update under way, and the solution
        version ACTIVE and of the campaign's solution."""
        campaign = self._get(self.campaigns, body["campaignArn"])
        update = self.campaign_updates.get(campaign.arn)
        busy = update is not None and update.status not in {"ACTIVE", "CREATE FAILED"}
        if campaign.status != "ACTIVE" or busy:
            raise FakeError("ResourceInUseException", f"{campaign.arn} is being created or updated")
        version = self._get(self.solution_versions, body["solutionVersionArn"])
        if version.status != "ACTIVE":
            raise FakeError("ResourceInUseException", f"{version.arn} is {version.status}")
        serving = self.solution_versions[campaign.request["solutionVersionArn"]]
        if version.request["solutionArn"] != serving.request["solutionArn"]:
            raise FakeError(
                "InvalidInputException",
                f"{version.arn} is not a version of {serving.request['solutionArn']}",
            )
        request = {**campaign.request, **body, "solutionVersionArn": version.arn}
        self.campaign_updates[campaign.arn] = Job(
            campaign.arn, request, failure=self.fail.pop("UpdateCampaign", None)
        )
        return {"campaignArn": campaign.arn}

    def serving(self, campaign_arn: str) -> str:
        """The solution version a campaign serves now."""
        return str(self.campaigns[campaign_arn].request["solutionVersionArn"])

    async def op_ListCampaigns(self, body: dict[str, Any]) -> dict[str, Any]:
        found = [
            job
            for job in self.campaigns.values()
            if self.solution_versions[job.request["solutionVersionArn"]].request["solutionArn"]
            == body.get("solutionArn")
        ]
        return {"campaigns": [self._summary(job, "campaignArn", "status") for job in found]}

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
        if job.status == "ACTIVE":  # what Personalize bills for it
            described["trainingHours"] = TRAINING_HOURS
        return {"solutionVersion": described}

    async def op_GetSolutionMetrics(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._get(self.solution_versions, body["solutionVersionArn"])
        metrics: dict[str, float] = {"coverage": 0.5}
        if self.ndcg_at_10 is not None:
            metrics["normalized_discounted_cumulative_gain_at_10"] = self.ndcg_at_10
        return {"solutionVersionArn": job.arn, "metrics": metrics}

    # -- batch inference jobs --------------------------------------------------------------

    async def op_CreateBatchInferenceJob(self, body: dict[str, Any]) -> dict[str, Any]:
        version = self._get(self.solution_versions, body["solutionVersionArn"])
        if version.status != "ACTIVE":
            raise FakeError("ResourceInUseException", f"{version.arn} is {version.status}")
        if "filterArn" in body and self._get(self.filters, body["filterArn"]).status != "ACTIVE":
            raise FakeError("ResourceInUseException", f"{body['filterArn']} is not ACTIVE")
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
