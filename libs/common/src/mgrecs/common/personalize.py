"""aioboto3 clients for Personalize: the self-hosted engine or AWS, same code path.

When `personalize_endpoint_url` is set, the events and runtime clients talk to the engine
service (which checks SigV4 signatures with the configured keys); when it is empty they talk
to AWS. The control-plane client (AWS mode's batch jobs) has its own endpoint setting.
"""

from contextlib import AbstractAsyncContextManager
from typing import Any

import aioboto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from mgrecs.common.settings import Settings

BULK_EVENTS_PATH = "/events/bulk"
"""The self-hosted engine's own operation (AWS has none like it): many PutEvents calls in one
SigV4-signed request, `{"calls": [<PutEvents body>, ...]}`, validated whole (a refused bulk
records nothing). The tracker's events sink sends it (mgrecs.tracker.bulk)."""
MAX_BULK_EVENTS = 5_000
"""Events in one bulk request at most (the engine refuses more): about 1.3 MB of the
tracker's events, well under the engine's `max_request_bytes` (5 MiB)."""


def _session(settings: Settings) -> aioboto3.Session:
    return aioboto3.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name=settings.aws_region,
    )


def _client(
    settings: Settings,
    service: str,
    endpoint_url: str | None,
    max_attempts: int = 3,
    validate: bool = True,
) -> AbstractAsyncContextManager[Any]:
    return _session(settings).client(  # type: ignore[no-any-return]
        service,
        endpoint_url=endpoint_url or None,
        config=Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=10,
            parameter_validation=validate,
        ),
    )


def events_client(settings: Settings) -> AbstractAsyncContextManager[Any]:
    """`personalize-events` client (PutEvents), one try per call: the tracker retries
    itself, with a circuit breaker and a dead-letter topic (docs/guarantees.md, The tracker).
    Its calls are built from validated orders, so botocore's own parameter check (a tenth of a
    call's CPU) is skipped; the target still validates them."""
    return _client(
        settings,
        "personalize-events",
        settings.personalize_endpoint_url,
        max_attempts=1,
        validate=False,
    )


def runtime_client(settings: Settings) -> AbstractAsyncContextManager[Any]:
    """`personalize-runtime` client (GetRecommendations, GetPersonalizedRanking)."""
    return _client(settings, "personalize-runtime", settings.personalize_endpoint_url)


def control_client(settings: Settings) -> AbstractAsyncContextManager[Any]:
    """`personalize` client (import jobs, solution versions, batch inference jobs) for the
    batch jobs' AWS mode, at `personalize_control_endpoint_url` (None: AWS)."""
    return _client(settings, "personalize", settings.personalize_control_endpoint_url)


def account_client(settings: Settings, service: str) -> AbstractAsyncContextManager[Any]:
    """An `s3`, `iam` or `sts` client, for the bucket and the role `mgrecs aws provision`
    makes: S3 at `s3_endpoint_url` (as the artifact store), the others at AWS (or where
    botocore's own `AWS_ENDPOINT_URL_<SERVICE>` points them: a moto server in tests)."""
    endpoint = settings.s3_endpoint_url if service == "s3" else None
    return _client(settings, service, endpoint)


def signed_headers(settings: Settings, method: str, url: str, body: bytes = b"") -> dict[str, str]:
    """SigV4 headers for a plain HTTP call to the engine (its `/stats`), signed with the
    key the clients above use: what `curl --aws-sigv4 aws:amz:<region>:personalize` sends."""
    request = AWSRequest(method=method, url=url, data=body)
    credentials = Credentials(settings.aws_access_key_id, settings.aws_secret_access_key)
    SigV4Auth(credentials, "personalize", settings.aws_region).add_auth(request)
    return dict(request.headers.items())
