"""`mgrecs aws provision` against the fake Personalize control plane (botocore validates every
request against the real service model) and a moto server for S3, IAM and STS: from nothing,
again, over a group with the wrong schema, over a bucket or a role of its own, and dry."""

import asyncio
import contextlib
import json
import re
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mgrecs.batch.aws.access import (
    BLOCK_PUBLIC_ACCESS,
    bucket_grants,
    bucket_policy,
    default_bucket,
    missing_grants,
    role_policy,
    trust_policy,
)
from mgrecs.batch.aws.control import wait_active, wait_solution_version
from mgrecs.batch.aws.provision import (
    FILTERS,
    RECIPES,
    check_name,
    provision,
    schema_difference,
)
from mgrecs.batch.export import SCHEMAS
from mgrecs.cli.embedded import free_port
from mgrecs.cli.main import app
from mgrecs.common.artifacts import open_store
from mgrecs.common.personalize import account_client, control_client
from mgrecs.common.settings import Settings, get_settings
from mgrecs.engine.filters import parse_filter
from support.fake_personalize import ARN, FakePersonalize
from support.helpers import serve

GROUP = f"{ARN}:dataset-group/mgrecs"
ACCOUNT = "123456789012"
"""The account moto answers GetCallerIdentity with, and makes ARNs in."""
BUCKET = f"mgrecs-{ACCOUNT}-us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mgrecs-personalize"


@pytest.fixture
def empty_account(s3_endpoint: str) -> str:
    """The moto server (S3, IAM, STS) with nothing in it: its endpoint."""
    reset = urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).close()
    return s3_endpoint


@pytest.fixture
async def fake(
    monkeypatch: pytest.MonkeyPatch, empty_account: str
) -> AsyncIterator[tuple[Settings, FakePersonalize]]:
    """The fake control plane, serving, an empty moto account (S3, and IAM and STS through
    botocore's `AWS_ENDPOINT_URL_<SERVICE>`), and settings (and the CLI's environment) for
    them."""
    s3_endpoint = empty_account
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", s3_endpoint)
    port = free_port()
    env = {
        "s3_endpoint_url": s3_endpoint,
        "personalize_control_endpoint_url": f"http://127.0.0.1:{port}",
        "personalize_poll_seconds": "0.01",
        "personalize_poll_max_seconds": "0.05",
        "log_json": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"MGRECS_{name.upper()}", value)
    get_settings.cache_clear()
    settings = Settings()
    fake = FakePersonalize(settings, {})
    async with serve(fake.app, port):
        yield settings, fake
    get_settings.cache_clear()


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["aws", "provision", *args])


def printed_settings(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if line.startswith("MGRECS_"))


def line_of(output: str, kind: str, name: str) -> str:
    """The report's line about one resource."""
    (line,) = [
        line for line in output.splitlines() if re.search(rf"\s{{2}}{kind}\s+{name}\b", line)
    ]
    return line


def creates(fake: FakePersonalize) -> list[str]:
    return [call for call in fake.calls if call.startswith(("Create", "Update", "Delete"))]


def expected_settings(tracking_id: str) -> dict[str, str]:
    return {
        "MGRECS_BATCH_MODE": "aws",
        "MGRECS_PERSONALIZE_ENDPOINT_URL": "",
        "MGRECS_AWS_REGION": "us-east-1",
        "MGRECS_ARTIFACT_STORE_URL": f"s3://{BUCKET}",
        "MGRECS_PERSONALIZE_ROLE_ARN": ROLE,
        "MGRECS_PERSONALIZE_DATASET_GROUP_ARN": GROUP,
        "MGRECS_PERSONALIZE_INTERACTIONS_DATASET_ARN": f"{ARN}:dataset/mgrecs/INTERACTIONS",
        "MGRECS_PERSONALIZE_ITEMS_DATASET_ARN": f"{ARN}:dataset/mgrecs/ITEMS",
        "MGRECS_PERSONALIZE_USERS_DATASET_ARN": f"{ARN}:dataset/mgrecs/USERS",
        "MGRECS_TRACKING_ID": tracking_id,
        "MGRECS_CATEGORY_FILTER_ARN": f"{ARN}:filter/mgrecs-category",
        "MGRECS_EXCLUDE_PURCHASED_FILTER_ARN": f"{ARN}:filter/mgrecs-exclude-purchased",
        "MGRECS_PERSONALIZE_USER_SOLUTION_ARN": f"{ARN}:solution/mgrecs-user",
        "MGRECS_USER_CAMPAIGN_ARN": f"{ARN}:campaign/mgrecs-user",
        "MGRECS_PERSONALIZE_SIMILAR_SOLUTION_ARN": f"{ARN}:solution/mgrecs-similar",
        "MGRECS_SIMILAR_CAMPAIGN_ARN": f"{ARN}:campaign/mgrecs-similar",
        "MGRECS_PERSONALIZE_RANKING_SOLUTION_ARN": f"{ARN}:solution/mgrecs-ranking",
        "MGRECS_RANKING_CAMPAIGN_ARN": f"{ARN}:campaign/mgrecs-ranking",
    }


async def account_state(settings: Settings, bucket: str = BUCKET) -> dict[str, Any]:
    """The moto account's buckets (and their regions), `bucket`'s public access block and
    policy, its roles (and their trust policies) and mgrecs-personalize's inline policies."""
    state: dict[str, Any] = {}
    async with account_client(settings, "s3") as s3, account_client(settings, "iam") as iam:
        state["buckets"] = {}
        for found in (await s3.list_buckets())["Buckets"]:
            location = await s3.get_bucket_location(Bucket=found["Name"])
            state["buckets"][found["Name"]] = location.get("LocationConstraint") or "us-east-1"
        if bucket in state["buckets"]:
            with contextlib.suppress(s3.exceptions.ClientError):  # none: the key is left out
                block = await s3.get_public_access_block(Bucket=bucket)
                state["public access block"] = block["PublicAccessBlockConfiguration"]
            with contextlib.suppress(s3.exceptions.ClientError):
                policy = await s3.get_bucket_policy(Bucket=bucket)
                state["bucket policy"] = json.loads(policy["Policy"])
        roles = (await iam.list_roles())["Roles"]
        state["roles"] = {r["RoleName"]: r["AssumeRolePolicyDocument"] for r in roles}
        if "mgrecs-personalize" in state["roles"]:
            names = await iam.list_role_policies(RoleName="mgrecs-personalize")
            state["role policies"] = {
                name: (await iam.get_role_policy(RoleName="mgrecs-personalize", PolicyName=name))[
                    "PolicyDocument"
                ]
                for name in names["PolicyNames"]
            }
    return state


async def test_provision_from_nothing_creates_everything_and_prints_the_settings(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    settings, personalize = fake
    ran = await asyncio.to_thread(_cli)
    assert ran.exit_code == 0, ran.output

    assert [job.request["name"] for job in personalize.groups.values()] == ["mgrecs"]
    assert {
        job.request["name"]: json.loads(job.request["schema"])
        for job in personalize.schemas.values()
    } == {f"mgrecs-{kind}": schema for kind, schema in SCHEMAS.items()}
    assert {
        (job.request["datasetType"], job.request["schemaArn"], job.status)
        for job in personalize.datasets.values()
    } == {
        (kind.capitalize(), f"{ARN}:schema/mgrecs-{kind}", "ACTIVE")
        for kind in ("interactions", "items", "users")
    }
    (tracker,) = personalize.trackers.values()
    assert (tracker.request["datasetGroupArn"], tracker.status) == (GROUP, "ACTIVE")
    assert {
        job.request["name"]: job.request["filterExpression"] for job in personalize.filters.values()
    } == {f"mgrecs-{key}": expression for key, expression in FILTERS.items()}
    # The category filter is the engine's: the API's `category` means the same in both modes.
    assert FILTERS["category"] == Settings().engine_filters["mgrecs-category"]
    assert {
        job.request["name"]: (job.request["recipeArn"], job.request["performAutoTraining"])
        for job in personalize.created_solutions.values()
    } == {f"mgrecs-{key}": (recipe, False) for key, recipe in RECIPES.items()}
    # No solution version yet: the campaigns wait for the first retrain.
    assert personalize.campaigns == {}
    assert ran.stdout.count("pending") == 3

    printed = printed_settings(ran.stdout)
    assert printed == expected_settings(tracker.request["trackingId"])
    assert all(name.removeprefix("MGRECS_").lower() in Settings.model_fields for name in printed)
    assert line_of(ran.stdout, "bucket", BUCKET).startswith("created")
    assert line_of(ran.stdout, "role", "mgrecs-personalize").startswith("created")
    assert await account_state(settings) == {
        "buckets": {BUCKET: "us-east-1"},
        "public access block": BLOCK_PUBLIC_ACCESS,
        "bucket policy": bucket_policy(BUCKET),
        "roles": {"mgrecs-personalize": trust_policy()},
        "role policies": {"mgrecs-bucket": role_policy(BUCKET)},
    }
    # What AWS mode reads the bucket through is that bucket: the printed store opens on it.
    printed_store = settings.model_copy(
        update={"artifact_store_url": printed["MGRECS_ARTIFACT_STORE_URL"]}
    )
    assert open_store(printed_store).url == f"s3://{BUCKET}"


async def test_provision_again_changes_nothing_and_a_trained_solution_gets_its_campaign(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    settings, personalize = fake
    first = await provision(settings)
    before, account = len(personalize.calls), await account_state(settings)

    # The operator sets what was printed: the next run finds the same bucket and role.
    settings = settings.model_copy(
        update={
            "personalize_role_arn": first.settings["MGRECS_PERSONALIZE_ROLE_ARN"],
            "artifact_store_url": first.settings["MGRECS_ARTIFACT_STORE_URL"],
        }
    )
    again = await provision(settings)

    assert creates(personalize)[-1] == "CreateSolution"  # nothing created since the first run
    assert "Create" not in "".join(personalize.calls[before:])
    assert await account_state(settings) == account
    assert {(r.outcome, r.detail) for r in again.resources if r.kind in ("bucket", "role")} == {
        ("found", "")
    }
    assert {r.outcome for r in again.resources} == {"found", "pending"}
    assert again.settings == first.settings

    # Once each solution has a trained version, a run creates its campaign under the ARN
    # the pending run printed.
    personalize.interactions = [("c1", "p1"), ("c2", "p1")]
    async with control_client(settings) as client:
        for key in RECIPES:
            created = await client.create_solution_version(
                solutionArn=f"{ARN}:solution/mgrecs-{key}"
            )
            await wait_solution_version(client, created["solutionVersionArn"], settings)
    third = await provision(settings)
    campaigns = [r for r in third.resources if r.kind == "campaign"]
    assert {r.outcome for r in campaigns} == {"created"}
    assert {job.status for job in personalize.campaigns.values()} == {"ACTIVE"}
    assert third.settings == again.settings
    assert {r.outcome for r in (await provision(settings)).resources} == {"found"}


async def _create(client: Any, settings: Settings, operation: str, key: str, **args: Any) -> str:
    """One resource created through the real client (so botocore validates it), ACTIVE."""
    arn = str((await getattr(client, f"create_{operation}")(**args))[key])
    describe = getattr(client, f"describe_{operation}")
    out = {"dataset_group": "datasetGroup"}.get(operation, operation)

    async def described() -> dict[str, Any]:
        return dict((await describe(**{key: arn}))[out])

    await wait_active(described, operation, arn, settings)
    return arn


async def test_a_group_with_another_schema_is_reported_not_replaced(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    """The old pipeline's group, had its users dataset REGION where LOCATION is wanted, and
    a schema of mgrecs's name lacking PRODUCT_NAME: both reported, exit 1, nothing replaced
    and nothing built on them."""
    settings, personalize = fake
    users = json.loads(json.dumps(SCHEMAS["users"]))
    users["fields"][-1]["name"] = "REGION"
    items = json.loads(json.dumps(SCHEMAS["items"]))
    items["fields"] = [f for f in items["fields"] if f["name"] != "PRODUCT_NAME"]
    async with control_client(settings) as client:
        group = await _create(client, settings, "dataset_group", "datasetGroupArn", name="mgrecs")
        old = (await client.create_schema(name="old-users", schema=json.dumps(users)))["schemaArn"]
        await client.create_schema(name="mgrecs-items", schema=json.dumps(items))
        await _create(
            client,
            settings,
            "dataset",
            "datasetArn",
            name="old-users",
            schemaArn=old,
            datasetGroupArn=group,
            datasetType="Users",
        )
    before = len(personalize.calls)

    ran = await asyncio.to_thread(_cli)

    assert ran.exit_code == 1, ran.output
    users_dataset = line_of(ran.stdout, "dataset", "mgrecs-users")
    assert users_dataset.startswith("mismatch")
    assert "missing LOCATION" in users_dataset and "unexpected REGION" in users_dataset
    items_schema = line_of(ran.stdout, "schema", "mgrecs-items")
    assert items_schema.startswith("mismatch") and "missing PRODUCT_NAME" in items_schema
    assert line_of(ran.stdout, "dataset", "mgrecs-items").startswith("skipped")
    assert "do not match: reported, not replaced" in ran.stdout
    # Only the interactions schema and dataset, which were missing, were created (no users
    # schema: the users dataset exists).
    assert [c for c in personalize.calls[before:] if c.startswith("Create")] == [
        "CreateSchema",
        "CreateDataset",
    ]
    assert personalize.datasets[f"{ARN}:dataset/mgrecs/USERS"].request["schemaArn"] == old
    assert personalize.trackers == {} and personalize.created_solutions == {}
    assert "MGRECS_PERSONALIZE_USERS_DATASET_ARN" not in printed_settings(ran.stdout)


async def test_a_dry_run_creates_nothing(fake: tuple[Settings, FakePersonalize]) -> None:
    settings, personalize = fake
    dry = await asyncio.to_thread(_cli, "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert creates(personalize) == []
    assert personalize.calls and all(c.startswith("List") for c in personalize.calls)
    assert {line.split("  ")[0] for line in dry.stdout.splitlines() if "  " in line} == {
        "would create"
    }
    assert "dry run: nothing was created" in dry.stdout
    assert printed_settings(dry.stdout) == {}
    assert line_of(dry.stdout, "bucket", BUCKET) and line_of(
        dry.stdout, "role", "mgrecs-personalize"
    )
    assert await account_state(settings) == {"buckets": {}, "roles": {}}

    done = await provision(settings)
    calls = len(personalize.calls)
    again = await provision(settings, dry_run=True)
    assert not [c for c in personalize.calls[calls:] if not c.startswith(("List", "Describe"))]
    assert {r.outcome for r in again.resources} == {"found", "pending"}
    assert again.settings.items() <= done.settings.items()


async def test_a_filter_or_solution_of_the_name_unlike_mgrecss_is_reported(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    settings, personalize = fake
    await provision(settings)
    filters = personalize.filters[f"{ARN}:filter/mgrecs-category"]
    filters.request["filterExpression"] = "EXCLUDE ItemID WHERE Items.PRICE > 100"
    solution = personalize.created_solutions[f"{ARN}:solution/mgrecs-ranking"]
    solution.request["recipeArn"] = "arn:aws:personalize:::recipe/aws-popularity-count"
    calls = len(personalize.calls)

    again = await provision(settings)

    assert {(r.kind, r.name) for r in again.mismatches} == {
        ("filter", "mgrecs-category"),
        ("solution", "mgrecs-ranking"),
    }
    assert "MGRECS_CATEGORY_FILTER_ARN" not in again.settings
    assert "MGRECS_PERSONALIZE_RANKING_SOLUTION_ARN" not in again.settings
    (campaign,) = [
        r for r in again.resources if r.name == "mgrecs-ranking" and r.kind == "campaign"
    ]
    assert campaign.outcome == "skipped" and "MGRECS_RANKING_CAMPAIGN_ARN" not in again.settings
    assert "Create" not in "".join(personalize.calls[calls:])


def test_the_provisioned_filters_mean_the_same_to_the_self_hosted_engine() -> None:
    """Both expressions parse with the engine's own filter language: a filter ARN set in
    AWS mode names what the self-hosted engine would do with the same expression."""
    assert parse_filter(FILTERS["category"]).parameters == ["CATEGORY"]
    assert parse_filter(FILTERS["exclude-purchased"]).parameters == []


@given(st.text(max_size=80))
def test_a_name_is_taken_only_as_personalize_takes_names(name: str) -> None:
    try:
        checked = check_name(name)
    except ValueError:
        return
    assert checked == name
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    assert name[0].isalnum() and len(name + "-exclude-purchased") <= 63


def test_the_cli_refuses_a_name_personalize_would_not_take() -> None:
    ran = CliRunner().invoke(app, ["aws", "provision", "--name", "bad name!"])
    assert ran.exit_code == 2 and "letters, digits" in ran.output


async def test_a_resource_that_fails_stops_the_run_with_aws_reason(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    _, personalize = fake
    personalize.fail["CreateDatasetGroup"] = "KMS key not usable"
    ran = await asyncio.to_thread(_cli)
    assert ran.exit_code == 1, ran.output
    assert "stopped: PersonalizeJobFailed: dataset group" in ran.stdout
    assert "KMS key not usable" in ran.stdout
    assert creates(personalize) == ["CreateDatasetGroup"]


@given(st.permutations(range(5)), st.sampled_from(sorted(SCHEMAS)), st.booleans())
def test_a_schema_differs_only_by_its_fields_names_and_types(
    order: list[int], kind: str, rename: bool
) -> None:
    """Field order and a union's order do not matter (Personalize maps CSV columns by name);
    a renamed field is named on both sides."""
    fields = [dict(f) for f in SCHEMAS[kind]["fields"]]
    fields = [fields[i] for i in order if i < len(fields)]
    for item in fields:
        if isinstance(item["type"], list):
            item["type"] = list(reversed(item["type"]))
    if rename:
        fields[0] = {**fields[0], "name": "OTHER"}
    difference = schema_difference(json.dumps({**SCHEMAS[kind], "fields": fields}), kind)
    if rename:
        assert "unexpected OTHER" in difference and "missing" in difference
    else:
        assert difference == ""


async def test_an_existing_role_personalize_cannot_assume_is_reported_not_replaced(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    settings, personalize = fake
    ec2 = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    async with account_client(settings, "iam") as iam:
        await iam.create_role(
            RoleName="mgrecs-personalize", AssumeRolePolicyDocument=json.dumps(ec2)
        )

    ran = await asyncio.to_thread(_cli)

    assert ran.exit_code == 1, ran.output
    role = line_of(ran.stdout, "role", "mgrecs-personalize")
    assert role.startswith("mismatch") and ROLE in role
    assert "its trust policy does not let personalize.amazonaws.com assume it" in role
    assert "do not match: reported, not replaced" in ran.stdout
    state = await account_state(settings)
    assert state["roles"] == {"mgrecs-personalize": ec2}
    assert state["role policies"] == {}  # not given mgrecs's policy either
    printed = printed_settings(ran.stdout)
    assert "MGRECS_PERSONALIZE_ROLE_ARN" not in printed
    # The rest does not depend on the role: it is provisioned and printed.
    assert printed["MGRECS_ARTIFACT_STORE_URL"] == f"s3://{BUCKET}"
    assert creates(personalize)[-1] == "CreateSolution"


async def test_an_existing_bucket_is_adopted_given_only_what_it_lacks(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    """The artifact store's bucket, made by hand with nothing on it, gets the bucket policy
    and the public access block; one whose policy leaves Personalize out is reported and
    left as it is."""
    settings, _ = fake
    own = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "personalize.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::acme-other/*",
            }
        ],
    }
    async with account_client(settings, "s3") as s3:
        await s3.create_bucket(Bucket="acme-data")
        await s3.create_bucket(Bucket="acme-other")
        await s3.put_bucket_policy(Bucket="acme-other", Policy=json.dumps(own))
    bare = settings.model_copy(update={"artifact_store_url": "s3://acme-data/prod"})

    dry = await provision(bare, dry_run=True)
    (bucket,) = [r for r in dry.resources if r.kind == "bucket"]
    assert (bucket.outcome, bucket.detail) == (
        "found",
        "would add its bucket policy; would add its public access block",
    )
    done = await provision(bare)

    (bucket,) = [r for r in done.resources if r.kind == "bucket"]
    assert (bucket.name, bucket.outcome) == ("acme-data", "found")
    assert bucket.detail == "added its bucket policy; added its public access block"
    assert done.settings["MGRECS_ARTIFACT_STORE_URL"] == "s3://acme-data/prod"
    state = await account_state(settings, "acme-data")
    assert state["bucket policy"] == bucket_policy("acme-data")
    assert state["public access block"] == BLOCK_PUBLIC_ACCESS
    assert state["role policies"] == {"mgrecs-bucket": role_policy("acme-data")}

    other = settings.model_copy(update={"artifact_store_url": "s3://acme-other"})
    refused = await provision(other)
    (bucket,) = refused.mismatches
    assert (bucket.kind, bucket.name) == ("bucket", "acme-other")
    assert bucket.detail == (
        "its bucket policy does not allow personalize.amazonaws.com"
        " s3:ListBucket on arn:aws:s3:::acme-other, s3:PutObject on arn:aws:s3:::acme-other/*"
    )
    untouched = await account_state(settings, "acme-other")
    assert untouched["bucket policy"] == own and "public access block" not in untouched
    assert "MGRECS_ARTIFACT_STORE_URL" not in refused.settings


async def test_the_bucket_is_made_in_the_region_and_one_elsewhere_is_reported(
    fake: tuple[Settings, FakePersonalize],
) -> None:
    settings, _ = fake
    ireland = settings.model_copy(update={"aws_region": "eu-west-1"})
    done = await provision(ireland)
    bucket = f"mgrecs-{ACCOUNT}-eu-west-1"
    assert done.settings["MGRECS_ARTIFACT_STORE_URL"] == f"s3://{bucket}"
    assert done.settings["MGRECS_AWS_REGION"] == "eu-west-1"
    assert (await account_state(settings, bucket))["buckets"] == {bucket: "eu-west-1"}

    # The same bucket named to a run in us-east-1: Personalize there could not read it.
    elsewhere = settings.model_copy(update={"artifact_store_url": f"s3://{bucket}"})
    refused = await provision(elsewhere)
    (mismatch,) = refused.mismatches
    assert mismatch.kind == "bucket"
    assert mismatch.detail == "in eu-west-1: Personalize uses buckets of its own region, us-east-1"


def test_a_policy_grants_by_iams_wildcards_and_not_under_conditions() -> None:
    wanted = bucket_grants("acme", "prod")
    assert missing_grants(bucket_policy("acme"), wanted, "personalize.amazonaws.com") == []
    assert missing_grants(role_policy("acme"), wanted) == []
    assert missing_grants(bucket_policy("acme"), wanted, "ec2.amazonaws.com") == [
        f"{action} on {resource}" for action, resource in wanted
    ]
    broad = {"Statement": {"Effect": "Allow", "Action": "S3:*", "Resource": "arn:aws:s3:::acme*"}}
    assert missing_grants(json.dumps(broad), wanted) == []
    prefix_only = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::acme"},
            {"Effect": "Allow", "Action": "s3:*Object", "Resource": "arn:aws:s3:::acme/prod/*"},
        ]
    }
    assert missing_grants(prefix_only, wanted) == []
    assert missing_grants(prefix_only, bucket_grants("acme", "")) == [
        "s3:GetObject on arn:aws:s3:::acme/*",
        "s3:PutObject on arn:aws:s3:::acme/*",
    ]
    conditional = {"Statement": [{**role_policy("acme")["Statement"][0], "Condition": {}}]}
    assert len(missing_grants(conditional, wanted)) == 3
    assert len(missing_grants("not json", wanted)) == 3
    # IAM's raw form, URL-encoded, as an older client gives it.
    encoded = urllib.parse.quote(json.dumps(trust_policy()))
    assert missing_grants(encoded, [("sts:AssumeRole", "*")], "personalize.amazonaws.com") == []


@given(st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,44}", fullmatch=True))
def test_the_default_bucket_is_a_valid_bucket_name(name: str) -> None:
    """S3's rules: 3 to 63 lower-case letters, digits, `-` (no dots here), starting and
    ending with a letter or digit."""
    bucket = default_bucket(check_name(name), ACCOUNT, "ap-southeast-2")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", bucket), bucket
    assert bucket.endswith(f"-{ACCOUNT}-ap-southeast-2")
