"""The S3 bucket Personalize imports from and writes batch output to, and the IAM role it
assumes to do so: the policies `mgrecs aws provision` gives them, and the check that an
existing bucket's or role's policy grants what Personalize needs (docs/aws.md, Provisioning).
"""

import json
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote

PERSONALIZE = "personalize.amazonaws.com"
"""The service principal Personalize acts as."""

BUCKET_ACTIONS = ("s3:GetObject", "s3:ListBucket", "s3:PutObject")
"""What Personalize does with the bucket: reads the exports, lists them, writes batch output."""

BLOCK_PUBLIC_ACCESS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
"""The bucket's public access block: nothing in it is ever public (the exports name every
customer's purchases)."""

Grant = tuple[str, str]
"""An action and the resource it must be allowed on."""


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def default_bucket(name: str, account: str, region: str) -> str:
    """The bucket a provisioning run makes when no s3:// store is set: bucket names are
    global, so the account and the region make `--name`'s unique (lower case, `_` as `-`,
    63 characters at most)."""
    suffix = f"-{account}-{region}"
    return name.lower().replace("_", "-")[: 63 - len(suffix)] + suffix


def bucket_grants(bucket: str, prefix: str) -> list[Grant]:
    """What Personalize needs on the bucket: listing it, and reading and writing the keys
    under the store's prefix (a literal `*` stands for any key, so a policy naming the
    bucket's every key or the prefix's grants it)."""
    keys = f"{bucket_arn(bucket)}/{prefix + '/' if prefix else ''}*"
    return [
        ("s3:ListBucket", bucket_arn(bucket)),
        ("s3:GetObject", keys),
        ("s3:PutObject", keys),
    ]


ASSUME = [("sts:AssumeRole", "*")]
"""What a role's trust policy must grant Personalize."""


def _statement(actions: list[str], resources: list[str] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions}
    if resources is not None:
        statement["Resource"] = resources
    return statement


def bucket_policy(bucket: str) -> dict[str, Any]:
    """The bucket policy letting Personalize use the whole bucket (Personalize's guide's)."""
    resources = [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"]
    statement = {
        "Sid": "PersonalizeAccess",
        "Principal": {"Service": PERSONALIZE},
        **_statement(list(BUCKET_ACTIONS), resources),
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def trust_policy() -> dict[str, Any]:
    """The role's trust policy: Personalize, and only it, may assume the role."""
    statement = {"Principal": {"Service": PERSONALIZE}, **_statement(["sts:AssumeRole"])}
    return {"Version": "2012-10-17", "Statement": [statement]}


def role_policy(bucket: str) -> dict[str, Any]:
    """The role's inline policy: the bucket's actions on the bucket only."""
    resources = [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"]
    return {"Version": "2012-10-17", "Statement": [_statement(list(BUCKET_ACTIONS), resources)]}


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _principal_is(statement: dict[str, Any], service: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, dict) and service in _listed(principal.get("Service"))


def document(policy: Any) -> dict[str, Any]:
    """A policy as IAM or S3 gives it: a dict (botocore decodes IAM's), or JSON text, maybe
    URL-encoded (IAM's raw form). Unreadable text reads as an empty policy."""
    if isinstance(policy, dict):
        return policy
    text = str(policy)
    if text.startswith("%7B"):
        text = unquote(text)
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def missing_grants(policy: Any, wanted: list[Grant], service: str | None = None) -> list[str]:
    """The grants of `wanted` no Allow statement of `policy` gives (to `service`, for a
    bucket's or a trust policy), as `action on resource`. Actions match case-insensitively,
    both with IAM's wildcards; a statement with conditions, NotAction or NotResource is not
    counted (it may grant less), and a Deny is not weighed (mgrecs writes none)."""
    statements = document(policy).get("Statement", [])
    allowing = [
        s
        for s in (statements if isinstance(statements, list) else [statements])
        if isinstance(s, dict)
        and s.get("Effect") == "Allow"
        and not {"Condition", "NotAction", "NotResource"} & set(s)
        and (service is None or _principal_is(s, service))
    ]

    def allowed(action: str, resource: str) -> bool:
        return any(
            any(fnmatchcase(action.lower(), a.lower()) for a in _listed(s.get("Action")))
            and any(fnmatchcase(resource, r) for r in (_listed(s.get("Resource")) or ["*"]))
            for s in allowing
        )

    return [
        f"{action} on {resource}" for action, resource in wanted if not allowed(action, resource)
    ]
