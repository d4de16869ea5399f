"""`mgrecs aws provision`: the AWS resources AWS mode runs on, created or adopted,
idempotently (docs/aws.md, Provisioning).

In order: the S3 bucket Personalize reads the exports from and writes batch output to (the
artifact store's, else one named after `--name`, the account and the region), with its
public access blocked and a policy letting Personalize use it; the IAM role Personalize
assumes (`personalize_role_arn`'s, else `<name>-personalize`), with a policy for that bucket
(`mgrecs.batch.aws.access`); the dataset group, the three datasets with their schemas
(`mgrecs.batch.export.SCHEMAS`, the old pipeline's; a schema is looked up or created only
for a dataset to create), the event tracker, the filters (`FILTERS`), the solutions
(`RECIPES`, no automatic training: the batch's retrains train them) and their campaigns.
A resource found by its name (a dataset by its type, the tracker by its group) is adopted
when it matches and reported as a mismatch when it does not (a schema's fields, a filter's
expression, a solution's recipe): nothing is ever replaced or deleted. A mismatched schema
or dataset stops the run before anything is built on it. A campaign needs an ACTIVE
solution version: before the first retrain it is reported pending, with the ARN it will
have, and the next run creates it. An existing bucket or role is adopted as it is, given
only what it lacks outright (a bucket policy, a public access block, mgrecs's inline policy
on the role); one whose region or policies do not let Personalize use it is a mismatch. With
`dry_run` only Describe, List, Get and Head calls are made.
"""

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from mgrecs.batch.aws.access import (
    ASSUME,
    BLOCK_PUBLIC_ACCESS,
    PERSONALIZE,
    bucket_arn,
    bucket_grants,
    bucket_policy,
    default_bucket,
    missing_grants,
    role_policy,
    trust_policy,
)
from mgrecs.batch.aws.control import PersonalizeJobFailed, wait_active, wait_campaign
from mgrecs.batch.export import SCHEMAS
from mgrecs.common.logging import get_logger
from mgrecs.common.personalize import account_client, control_client
from mgrecs.common.settings import Settings

log = get_logger(__name__)

Outcome = Literal["created", "found", "would create", "pending", "mismatch", "skipped"]

DATASET_TYPES = {"interactions": "Interactions", "items": "Items", "users": "Users"}

RECIPES = {
    "user": "arn:aws:personalize:::recipe/aws-user-personalization",
    "similar": "arn:aws:personalize:::recipe/aws-similar-items",
    "ranking": "arn:aws:personalize:::recipe/aws-personalized-ranking",
}
"""Each solution (named `<name>-<key>`, as its campaign) and its recipe."""

EXCLUDE_PURCHASED = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
FILTERS = {
    "category": "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) | " + EXCLUDE_PURCHASED,
    "exclude-purchased": EXCLUDE_PURCHASED,
}
"""Each filter (named `<name>-<key>`): the API's `category` one, the engine's default
`mgrecs-category` expression; and the one the user batch inference job leaves out what a
customer bought with."""

SETTINGS = {
    "dataset group": {"": "personalize_dataset_group_arn"},
    "dataset": {kind: f"personalize_{kind}_dataset_arn" for kind in DATASET_TYPES},
    "filter": {
        "category": "category_filter_arn",
        "exclude-purchased": "exclude_purchased_filter_arn",
    },
    "solution": {key: f"personalize_{key}_solution_arn" for key in RECIPES},
    "campaign": {key: f"{key}_campaign_arn" for key in RECIPES},
}
"""The setting each provisioned resource's ARN goes to, by kind and key."""

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
LONGEST_SUFFIX = len("-exclude-purchased")


def check_name(name: str) -> str:
    """The resources' name prefix, as Personalize takes names (letters, digits, - and _,
    63 characters at most once suffixed); raises ValueError otherwise."""
    if not NAME.fullmatch(name) or len(name) + LONGEST_SUFFIX > 63:
        raise ValueError(
            f"{name!r}: letters, digits, - and _ only, starting with a letter or digit,"
            f" {63 - LONGEST_SUFFIX} characters at most"
        )
    return name


@dataclass(frozen=True)
class Resource:
    """What provisioning did with one resource."""

    kind: str
    name: str
    outcome: Outcome
    arn: str = ""
    detail: str = ""


@dataclass
class Provisioning:
    """Every resource's outcome, in order, and the settings AWS mode then runs with."""

    resources: list[Resource] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    """MGRECS_ name -> value."""
    error: str = ""
    """Why the run stopped (a refused call, a resource that failed), if it did."""

    @property
    def mismatches(self) -> list[Resource]:
        return [r for r in self.resources if r.outcome == "mismatch"]


def _fields(schema: dict[str, Any]) -> dict[str, frozenset[str]]:
    """A schema's fields and their types (a union's in any order): Personalize maps a CSV's
    columns by name, so the order of the fields does not matter."""
    found = {}
    for item in schema.get("fields", []):
        kind = item.get("type")
        found[str(item.get("name"))] = frozenset(kind if isinstance(kind, list) else [kind])
    return found


def schema_difference(schema_json: str, kind: str) -> str:
    """How a stored schema differs from SCHEMAS[kind]; empty when it does not."""
    try:
        stored = _fields(json.loads(schema_json))
    except ValueError:
        return "its schema is not JSON"
    wanted = _fields(SCHEMAS[kind])
    if stored == wanted:
        return ""
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    typed = sorted(n for n in set(wanted) & set(stored) if wanted[n] != stored[n])
    parts = [
        f"{label} {', '.join(names)}"
        for label, names in (("missing", missing), ("unexpected", extra), ("other type", typed))
        if names
    ]
    return "fields " + "; ".join(parts)


def _same_expression(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


class _Taken(Exception):
    """A name Personalize says is taken, by a resource the lookup did not find."""


@dataclass(frozen=True)
class Account:
    """The account's other clients (aioboto3) a run makes the bucket and the role with."""

    s3: Any
    iam: Any
    sts: Any


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Provisioner:
    """One run: `client` the Personalize control plane (aioboto3), `account` the rest."""

    def __init__(
        self, client: Any, account: Account, settings: Settings, name: str, dry_run: bool
    ) -> None:
        self.client = client
        self.account = account
        self.settings = settings
        self.name = check_name(name)
        self.dry_run = dry_run
        self.done = Provisioning()

    def _record(self, kind: str, key: str, resource: Resource) -> None:
        self.done.resources.append(resource)
        log.info(
            "aws_provisioned",
            kind=kind,
            name=resource.name,
            outcome=resource.outcome,
            arn=resource.arn or None,
            detail=resource.detail or None,
        )
        setting = SETTINGS.get(kind, {}).get(key)
        if setting and resource.arn and resource.outcome in ("created", "found", "pending"):
            self.done.settings[f"MGRECS_{setting.upper()}"] = resource.arn

    async def _find(
        self, operation: str, key: str, match: Callable[[dict[str, Any]], bool], **args: Any
    ) -> dict[str, Any] | None:
        """The first summary a List call (all its pages) gives that `match`es."""
        call = getattr(self.client, operation)
        token: str | None = None
        while True:
            page = await call(**args, **({"nextToken": token} if token else {}))
            for summary in page.get(key, []):
                if match(summary):
                    return dict(summary)
            token = page.get("nextToken")
            if not token:
                return None

    async def _create(self, operation: str, **args: Any) -> dict[str, Any]:
        try:
            return dict(await getattr(self.client, operation)(**args))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceAlreadyExistsException":
                raise _Taken(str(exc)) from exc
            raise

    async def _wait(self, kind: str, arn: str, describe: str, arn_key: str, out: str) -> None:
        async def described() -> dict[str, Any]:
            found = await getattr(self.client, describe)(**{arn_key: arn})
            return dict(found[out])

        await wait_active(described, kind, arn, self.settings)

    async def _build(
        self,
        kind: str,
        key: str,
        name: str,
        create: Callable[[], Awaitable[str]],
    ) -> str | None:
        """Create (or, dry, plan) a resource not found; its ARN (None when not created)."""
        if self.dry_run:
            self._record(kind, key, Resource(kind, name, "would create"))
            return None
        try:
            arn = await create()
        except _Taken as exc:
            self._record(kind, key, Resource(kind, name, "mismatch", detail=f"name taken: {exc}"))
            return None
        self._record(kind, key, Resource(kind, name, "created", arn))
        return arn

    # -- the resources, in order -----------------------------------------------------------

    async def _store(self) -> tuple[str, str]:
        """The bucket and the key prefix: the s3:// artifact store's, else the default
        bucket (`access.default_bucket`), whole."""
        store = urlparse(self.settings.artifact_store_url)
        if store.scheme == "s3" and store.netloc:
            return store.netloc, store.path.strip("/")
        account = str((await self.account.sts.get_caller_identity())["Account"])
        return default_bucket(self.name, account, self.settings.aws_region), ""

    async def bucket(self) -> tuple[str, str] | None:
        """The bucket and the store's prefix in it; None when the bucket is not usable
        (taken, in another region, a policy not letting Personalize in)."""
        s3, region = self.account.s3, self.settings.aws_region
        bucket, prefix = await self._store()
        url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        arn = bucket_arn(bucket)
        try:
            await s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                detail = f"name taken by another account, or not readable with these keys ({exc})"
                self._record("bucket", "", Resource("bucket", bucket, "mismatch", arn, detail))
                return None

            async def create() -> str:
                where = {"CreateBucketConfiguration": {"LocationConstraint": region}}
                await s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else where))
                await s3.put_public_access_block(
                    Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_PUBLIC_ACCESS
                )
                await s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(bucket)))
                return arn

            created = await self._build("bucket", "", bucket, create)
            if created is not None:
                self.done.settings["MGRECS_ARTIFACT_STORE_URL"] = url
            return bucket, prefix
        location = (await s3.get_bucket_location(Bucket=bucket)).get("LocationConstraint")
        location = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
        if location != region:
            detail = f"in {location}: Personalize uses buckets of its own region, {region}"
            self._record("bucket", "", Resource("bucket", bucket, "mismatch", arn, detail))
            return None
        difference, notes = await self._bucket_access(bucket, prefix)
        outcome: Outcome = "mismatch" if difference else "found"
        detail = difference or "; ".join(notes)
        self._record("bucket", "", Resource("bucket", bucket, outcome, arn, detail))
        if difference:
            return None
        self.done.settings["MGRECS_ARTIFACT_STORE_URL"] = url
        return bucket, prefix

    async def _bucket_access(self, bucket: str, prefix: str) -> tuple[str, list[str]]:
        """An existing bucket's policy and public access block: how the policy differs from
        what Personalize needs (a mismatch: the bucket is then left as it is), and notes
        (public access not wholly blocked; what was added where there was none)."""
        s3 = self.account.s3
        try:
            policy: str | None = (await s3.get_bucket_policy(Bucket=bucket))["Policy"]
        except ClientError as exc:
            if _code(exc) != "NoSuchBucketPolicy":
                raise
            policy = None
        if policy is not None:
            missing = missing_grants(policy, bucket_grants(bucket, prefix), PERSONALIZE)
            if missing:
                return f"its bucket policy does not allow {PERSONALIZE} {', '.join(missing)}", []
        try:
            found = await s3.get_public_access_block(Bucket=bucket)
            block: dict[str, Any] | None = found["PublicAccessBlockConfiguration"]
        except ClientError as exc:
            if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            block = None
        add = "would add" if self.dry_run else "added"
        notes = []
        if policy is None:
            if not self.dry_run:
                await s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(bucket)))
            notes.append(f"{add} its bucket policy")
        if block is None:
            if not self.dry_run:
                await s3.put_public_access_block(
                    Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_PUBLIC_ACCESS
                )
            notes.append(f"{add} its public access block")
        elif off := sorted(k for k in BLOCK_PUBLIC_ACCESS if not block.get(k)):
            notes.append(f"public access not blocked: {', '.join(off)} off")
        return "", notes

    async def role(self, store: tuple[str, str] | None) -> None:
        """The role Personalize assumes, with mgrecs's inline policy for the store's bucket
        (none while the bucket is not usable)."""
        iam = self.account.iam
        configured = self.settings.personalize_role_arn
        name = configured.rsplit("/", 1)[-1] if configured else f"{self.name}-personalize"
        policy_name = f"{self.name}-bucket"
        try:
            role = (await iam.get_role(RoleName=name))["Role"]
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise

            async def create() -> str:
                created = await iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust_policy()),
                    Description="Assumed by AWS Personalize to use mgrecs's bucket",
                )
                if store is not None:
                    await iam.put_role_policy(
                        RoleName=name,
                        PolicyName=policy_name,
                        PolicyDocument=json.dumps(role_policy(store[0])),
                    )
                return str(created["Role"]["Arn"])

            arn = await self._build("role", "", name, create)
            if arn is not None:
                self.done.settings["MGRECS_PERSONALIZE_ROLE_ARN"] = arn
            return
        arn = str(role["Arn"])
        if missing_grants(role["AssumeRolePolicyDocument"], ASSUME, PERSONALIZE):
            detail = f"its trust policy does not let {PERSONALIZE} assume it"
            self._record("role", "", Resource("role", name, "mismatch", arn, detail))
            return
        detail = ""
        if store is not None:
            try:
                policy = await iam.get_role_policy(RoleName=name, PolicyName=policy_name)
            except ClientError as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
                if not self.dry_run:
                    await iam.put_role_policy(
                        RoleName=name,
                        PolicyName=policy_name,
                        PolicyDocument=json.dumps(role_policy(store[0])),
                    )
                detail = f"{'would add' if self.dry_run else 'added'} its policy {policy_name}"
            else:
                missing = missing_grants(policy["PolicyDocument"], bucket_grants(*store))
                if missing:
                    detail = f"its policy {policy_name} does not allow {', '.join(missing)}"
                    self._record("role", "", Resource("role", name, "mismatch", arn, detail))
                    return
        self._record("role", "", Resource("role", name, "found", arn, detail))
        self.done.settings["MGRECS_PERSONALIZE_ROLE_ARN"] = arn

    async def group(self) -> str | None:
        found = await self._find("list_dataset_groups", "datasetGroups", self._named(self.name))
        if found is not None:
            arn = str(found["datasetGroupArn"])
            if found.get("status") != "ACTIVE" and not self.dry_run:
                await self._wait(
                    "dataset group",
                    arn,
                    "describe_dataset_group",
                    "datasetGroupArn",
                    "datasetGroup",
                )
            self._record("dataset group", "", Resource("dataset group", self.name, "found", arn))
            return arn

        async def create() -> str:
            created = await self._create("create_dataset_group", name=self.name)
            arn = str(created["datasetGroupArn"])
            await self._wait(
                "dataset group", arn, "describe_dataset_group", "datasetGroupArn", "datasetGroup"
            )
            return arn

        return await self._build("dataset group", "", self.name, create)

    async def schema(self, kind: str) -> tuple[str | None, bool]:
        """The schema's ARN (None: not created) and whether it matches."""
        name = f"{self.name}-{kind}"
        found = await self._find("list_schemas", "schemas", self._named(name))
        if found is not None:
            arn = str(found["schemaArn"])
            stored = (await self.client.describe_schema(schemaArn=arn))["schema"]["schema"]
            difference = schema_difference(stored, kind)
            outcome: Outcome = "mismatch" if difference else "found"
            self._record("schema", kind, Resource("schema", name, outcome, arn, difference))
            return arn, not difference

        async def create() -> str:
            created = await self._create(
                "create_schema", name=name, schema=json.dumps(SCHEMAS[kind])
            )
            return str(created["schemaArn"])

        return await self._build("schema", kind, name, create), True

    async def dataset(self, kind: str, group: str | None) -> str | None:
        """The dataset of that type in the group, adopted with its schema when the schema
        matches; else created, with the schema `<name>-<kind>` (found or created)."""
        name = f"{self.name}-{kind}"
        found = None
        if group is not None:
            found = await self._find(
                "list_datasets",
                "datasets",
                lambda s: str(s.get("datasetType", "")).lower() == kind,
                datasetGroupArn=group,
            )
        if found is not None:
            arn = str(found["datasetArn"])
            dataset = (await self.client.describe_dataset(datasetArn=arn))["dataset"]
            stored = (await self.client.describe_schema(schemaArn=dataset["schemaArn"]))["schema"]
            difference = schema_difference(stored["schema"], kind)
            if difference:
                difference = f"{difference} (schema {stored['schemaArn']})"
            outcome: Outcome = "mismatch" if difference else "found"
            if not difference:
                self._record(
                    "schema", kind, Resource("schema", stored["name"], "found", stored["schemaArn"])
                )
            self._record("dataset", kind, Resource("dataset", name, outcome, arn, difference))
            return arn
        schema, ok = await self.schema(kind)
        if not ok:
            detail = f"its schema {self.name}-{kind} does not match"
            self._record("dataset", kind, Resource("dataset", name, "skipped", detail=detail))
            return None

        async def create() -> str:
            assert group is not None and schema is not None
            created = await self._create(
                "create_dataset",
                name=name,
                schemaArn=schema,
                datasetGroupArn=group,
                datasetType=DATASET_TYPES[kind],
            )
            arn = str(created["datasetArn"])
            await self._wait("dataset", arn, "describe_dataset", "datasetArn", "dataset")
            return arn

        if group is None or schema is None:
            self._record("dataset", kind, self._unbuilt("dataset", name, "group or schema"))
            return None
        return await self._build("dataset", kind, name, create)

    async def tracker(self, group: str | None) -> None:
        name = f"{self.name}-tracker"
        found = None
        if group is not None:
            found = await self._find(
                "list_event_trackers", "eventTrackers", lambda s: True, datasetGroupArn=group
            )
        if found is not None:
            arn = str(found["eventTrackerArn"])
            tracker = (await self.client.describe_event_tracker(eventTrackerArn=arn))[
                "eventTracker"
            ]
            self._record(
                "event tracker", "", Resource("event tracker", tracker["name"], "found", arn)
            )
            self.done.settings["MGRECS_TRACKING_ID"] = str(tracker["trackingId"])
            return

        async def create() -> str:
            assert group is not None
            created = await self._create("create_event_tracker", name=name, datasetGroupArn=group)
            arn = str(created["eventTrackerArn"])
            await self._wait(
                "event tracker", arn, "describe_event_tracker", "eventTrackerArn", "eventTracker"
            )
            self.done.settings["MGRECS_TRACKING_ID"] = str(created["trackingId"])
            return arn

        if group is None:
            self._record("event tracker", "", Resource("event tracker", name, "would create"))
            return
        await self._build("event tracker", "", name, create)

    async def filter(self, group: str | None, key: str, expression: str) -> None:
        name = f"{self.name}-{key}"
        found = None
        if group is not None:
            found = await self._find(
                "list_filters", "Filters", self._named(name), datasetGroupArn=group
            )
        if found is not None:
            arn = str(found["filterArn"])
            stored = (await self.client.describe_filter(filterArn=arn))["filter"]
            same = _same_expression(str(stored.get("filterExpression", "")), expression)
            detail = "" if same else f"expression {stored.get('filterExpression')!r}"
            outcome: Outcome = "found" if same else "mismatch"
            self._record("filter", key, Resource("filter", name, outcome, arn, detail))
            return

        async def create() -> str:
            assert group is not None
            created = await self._create(
                "create_filter", name=name, datasetGroupArn=group, filterExpression=expression
            )
            arn = str(created["filterArn"])
            await self._wait("filter", arn, "describe_filter", "filterArn", "filter")
            return arn

        if group is None:
            self._record("filter", key, Resource("filter", name, "would create"))
            return
        await self._build("filter", key, name, create)

    async def solution(self, group: str | None, key: str, recipe: str) -> str | None:
        name = f"{self.name}-{key}"
        found = None
        if group is not None:
            found = await self._find(
                "list_solutions", "solutions", self._named(name), datasetGroupArn=group
            )
        if found is not None:
            arn = str(found["solutionArn"])
            same = found.get("recipeArn") == recipe
            detail = "" if same else f"recipe {found.get('recipeArn')}, not {recipe}"
            outcome: Outcome = "found" if same else "mismatch"
            self._record("solution", key, Resource("solution", name, outcome, arn, detail))
            return arn if same else None

        async def create() -> str:
            assert group is not None
            created = await self._create(
                "create_solution",
                name=name,
                datasetGroupArn=group,
                recipeArn=recipe,
                performAutoTraining=False,
            )
            arn = str(created["solutionArn"])
            await self._wait("solution", arn, "describe_solution", "solutionArn", "solution")
            return arn

        if group is None:
            self._record("solution", key, Resource("solution", name, "would create"))
            return None
        return await self._build("solution", key, name, create)

    async def campaign(self, key: str, solution: str | None) -> None:
        name = f"{self.name}-{key}"
        if solution is None:
            self._record("campaign", key, self._unbuilt("campaign", name, "solution"))
            return
        found = await self._find(
            "list_campaigns", "campaigns", self._named(name), solutionArn=solution
        )
        if found is not None:
            arn = str(found["campaignArn"])
            self._record("campaign", key, Resource("campaign", name, "found", arn))
            return
        trained = await self._find(
            "list_solution_versions",
            "solutionVersions",
            lambda s: s.get("status") == "ACTIVE",
            solutionArn=solution,
        )
        if trained is None:
            # Campaign ARNs are the solution's with its kind and name: known before it exists.
            arn = solution.rsplit(":", 1)[0] + f":campaign/{name}"
            detail = "needs a trained solution version: run again after the first retrain"
            self._record("campaign", key, Resource("campaign", name, "pending", arn, detail))
            return

        async def create() -> str:
            created = await self._create(
                "create_campaign",
                name=name,
                solutionVersionArn=trained["solutionVersionArn"],
                minProvisionedTPS=1,
            )
            arn = str(created["campaignArn"])
            await wait_campaign(self.client, arn, self.settings)
            return arn

        await self._build("campaign", key, name, create)

    def _unbuilt(self, kind: str, name: str, parent: str) -> Resource:
        """A resource whose parent does not exist: planned in a dry run, else left out
        (its parent was reported as a mismatch)."""
        if self.dry_run:
            return Resource(kind, name, "would create")
        return Resource(kind, name, "skipped", detail=f"its {parent} is not usable")

    @staticmethod
    def _named(name: str) -> Callable[[dict[str, Any]], bool]:
        return lambda summary: summary.get("name") == name

    async def run(self) -> Provisioning:
        await self.role(await self.bucket())
        group = await self.group()
        for kind in DATASET_TYPES:
            await self.dataset(kind, group)
        if any(r.kind in ("schema", "dataset") for r in self.done.mismatches):
            detail = "a schema or dataset does not match: fix it, then run again"
            self.done.resources.append(Resource("the rest", "-", "skipped", detail=detail))
            return self.done
        await self.tracker(group)
        for key, expression in FILTERS.items():
            await self.filter(group, key, expression)
        for key, recipe in RECIPES.items():
            solution = await self.solution(group, key, recipe)
            await self.campaign(key, solution)
        if not self.dry_run:
            self.done.settings = {
                "MGRECS_BATCH_MODE": "aws",
                "MGRECS_PERSONALIZE_ENDPOINT_URL": "",
                "MGRECS_AWS_REGION": self.settings.aws_region,
                **self.done.settings,
            }
        return self.done


async def provision(
    settings: Settings, name: str = "mgrecs", dry_run: bool = False
) -> Provisioning:
    """Create or adopt every resource AWS mode needs (see the module's docstring)."""
    async with (
        control_client(settings) as client,
        account_client(settings, "s3") as s3,
        account_client(settings, "iam") as iam,
        account_client(settings, "sts") as sts,
    ):
        provisioner = Provisioner(client, Account(s3, iam, sts), settings, name, dry_run)
        try:
            return await provisioner.run()
        except (ClientError, BotoCoreError, PersonalizeJobFailed) as exc:
            # What was done so far stays reported; AWS's own words say what stopped it.
            provisioner.done.error = f"{type(exc).__name__}: {exc}"
            log.error("aws_provision_failed", error=provisioner.done.error)
            return provisioner.done
