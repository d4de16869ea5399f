"""AWS Signature Version 4 verification: the engine accepts only requests signed by a known key.

The canonical request and signature are recomputed with botocore's own `SigV4Auth` (the
code that signed them on the client side), restricted to the headers the client listed in
`SignedHeaders`, so both sides agree byte for byte.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mgrecs.engine_service.errors import AwsError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "personalize"
MAX_SKEW = timedelta(minutes=15)
REQUIRED_SIGNED_HEADERS = ("host", "x-amz-date")
_AUTH_FIELD = re.compile(r"(\w+)=([^,\s]*)")


@dataclass(frozen=True)
class SignedRequest:
    """What of an HTTP request the signature covers, as it arrived on the wire."""

    method: str
    raw_path: str
    query: str
    headers: Sequence[tuple[str, str]]
    """(lower-case name, value) pairs, repeated names kept."""
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


def parse_credentials(spec: str) -> dict[str, str]:
    """`"key:secret,key2:secret2"` -> {key: secret}; blank entries are skipped."""
    pairs = {}
    for entry in spec.split(","):
        if entry.strip():
            key, sep, secret = entry.strip().partition(":")
            if not sep or not key or not secret:
                raise ValueError(f"credential entry {entry.strip()!r} is not 'key:secret'")
            pairs[key] = secret
    return pairs


def _incomplete(message: str) -> AwsError:
    """A malformed signature: 403 like every refusal here (a garbled header is no less a
    stranger than a wrong one), with the code AWS gives it."""
    return AwsError(403, "IncompleteSignatureException", message)


def _invalid(message: str) -> AwsError:
    return AwsError(403, "InvalidSignatureException", message)


def _authorization_fields(authorization: str) -> dict[str, str]:
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported authorization algorithm {algorithm!r}")
    fields = dict(_AUTH_FIELD.findall(rest))
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if not fields.get(f)]
    if missing:
        raise _incomplete(f"Authorization header requires {', '.join(missing)}")
    return fields


def _timestamp(request: SignedRequest, now: datetime) -> str:
    amz_date = request.header("x-amz-date")
    if amz_date is None:
        raise _incomplete("Authorization requires the X-Amz-Date header")
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError as exc:
        raise _incomplete(f"X-Amz-Date {amz_date!r} is not of the form YYYYMMDDTHHMMSSZ") from exc
    if abs(now - signed_at) > MAX_SKEW:
        raise _invalid(
            f"Signature expired: {amz_date} is not within 15 minutes of "
            f"{now.strftime(SIGV4_TIMESTAMP)}"
        )
    return amz_date


def _check_payload_hash(request: SignedRequest) -> None:
    """A signed content-hash header must be the hash of the body that actually arrived."""
    declared = request.header("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(request.body).hexdigest():
        raise _invalid("X-Amz-Content-SHA256 does not match the request body")


def verify(request: SignedRequest, secrets: Mapping[str, str], now: datetime) -> str:
    """Check the SigV4 signature; return the access key, or raise the AWS error for it (a
    403, whatever the headers hold: nothing here raises anything else)."""
    try:
        return _verify(request, secrets, now)
    except (ValueError, TypeError, UnicodeError, OverflowError) as exc:
        raise _invalid(
            f"The request signature could not be verified: {type(exc).__name__}"
        ) from exc


def _verify(request: SignedRequest, secrets: Mapping[str, str], now: datetime) -> str:
    authorization = request.header("authorization")
    if not authorization:
        raise AwsError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    fields = _authorization_fields(authorization)
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise _incomplete("Credential must be <key>/<date>/<region>/<service>/aws4_request")
    access_key, scope_date, region, service, _ = scope
    secret = secrets.get(access_key)
    if secret is None:
        raise AwsError(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    signed_names = fields["SignedHeaders"].split(";")
    absent = [name for name in REQUIRED_SIGNED_HEADERS if name not in signed_names]
    if absent:
        raise _incomplete(f"SignedHeaders must include {', '.join(absent)}")
    amz_date = _timestamp(request, now)
    if scope_date != amz_date[:8]:
        raise _invalid(f"Credential date {scope_date} does not match X-Amz-Date {amz_date}")
    if service != SERVICE:
        raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'")
    if "x-amz-content-sha256" in signed_names:
        _check_payload_hash(request)

    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    query = f"?{request.query}" if request.query else ""
    rebuilt = AWSRequest(
        method=request.method,
        url=f"http://{request.header('host')}{request.raw_path}{query}",
        data=request.body,
    )
    for name, value in request.headers:
        if name in signed_names:
            rebuilt.headers[name] = value  # HTTPHeaders appends: repeated headers stay
    rebuilt.context["timestamp"] = amz_date
    string_to_sign = signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt))
    expected = signer.signature(string_to_sign, rebuilt)
    presented = fields["Signature"].encode("utf-8", "replace")  # any text, compared as bytes
    if not hmac.compare_digest(expected.encode(), presented):
        raise _invalid(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return access_key
