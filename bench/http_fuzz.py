"""Generated requests against every HTTP operation of a running service, for `make drill`:
counts the answers that are 5xx (there must be none; a bad request is a 4xx).

The api's and ingest's operations come from their own OpenAPI documents; the engine's are
the three Personalize operations it serves, signed with SigV4 like the real client (so the
body is parsed, not refused at the door), plus unsigned and garbled-signature requests.
"""

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hostile import GARBAGE, WEIRD_TEXT, example_of, mutate, weird_value

CONCURRENCY = 16
BAD_DATES: list[str | bytes] = [
    "now",
    "20261345T250000Z",
    "99999999T999999Z",
    "20000101T000000Z",
    "2026-12-04T10:00:00Z",
    "\u00e9".encode(),
    "0" * 300,
]
"""X-Amz-Date values a server must refuse with a 4xx (all legal as HTTP header values)."""
MAX_SAMPLES = 5
ENGINE_OPERATIONS = {
    "/events": {
        "trackingId": "mgrecs-tracking",
        "userId": "C00001",
        "sessionId": "C00001",
        "eventList": [
            {"eventId": "e1", "eventType": "purchase", "itemId": "P0001", "sentAt": 1764000000}
        ],
    },
    "/recommendations": {
        "campaignArn": "arn:aws:personalize:us-east-1:000000000000:campaign/mgrecs-user",
        "userId": "C00001",
        "numResults": 10,
    },
    "/personalize-ranking": {
        "campaignArn": "arn:aws:personalize:us-east-1:000000000000:campaign/mgrecs-ranking",
        "userId": "C00001",
        "inputList": ["P0001", "P0002"],
    },
}


@dataclass
class FuzzResult:
    service: str
    operations: int = 0
    requests: int = 0
    unsent: int = 0
    """Requests the HTTP client itself refused to send (not the server's doing)."""
    server_errors: int = 0
    samples: list[str] = field(default_factory=list)
    where: Counter[str] = field(default_factory=Counter)
    """5xx answers by operation and status."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    query: list[str]
    body: Any | None
    """An example body when the operation takes one."""


def operations_of(document: dict[str, Any]) -> list[Operation]:
    components = document.get("components", {}).get("schemas", {})
    found = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query = [p["name"] for p in spec.get("parameters", []) if p.get("in") == "query"]
            body = None
            if content := spec.get("requestBody", {}).get("content", {}):
                schema = next(iter(content.values())).get("schema", {})
                body = example_of(schema, components)
            found.append(Operation(method.upper(), path, query, body))
    return found


def _path_value(name: str, ids: dict[str, list[Any]], rng: random.Random) -> str:
    pool = (
        ids["regions"]
        if "region" in name
        else ids["products"]
        if "product" in name
        else ids["customers"]
    )
    value = str(rng.choice(pool)) if pool and rng.random() < 0.6 else rng.choice(WEIRD_TEXT)
    return quote(value or "x", safe="")


def _request(
    operation: Operation, key: str, ids: dict[str, list[Any]], rng: random.Random
) -> dict[str, Any]:
    path = operation.path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + _path_value(path[start + 1 : end], ids, rng) + path[end + 1 :]
    params = {
        name: str(weird_value(rng)) if rng.random() < 0.5 else str(rng.randrange(-5, 200))
        for name in operation.query
        if rng.random() < 0.5
    }
    headers: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.85:
        headers["X-API-Key"] = key
    elif roll < 0.93:
        headers["X-API-Key"] = "wrong-key"
    elif roll < 0.97:
        headers["Authorization"] = "Bearer \u00e9\u00e8".encode("latin-1")
    content: bytes | None = None
    if operation.body is not None:
        roll = rng.random()
        if roll < 0.5:
            content = json.dumps(mutate(operation.body, rng), allow_nan=True).encode()
        elif roll < 0.7:
            content = json.dumps(weird_value(rng), allow_nan=True).encode()
        elif roll < 0.85:
            content = rng.choice(GARBAGE)(rng)
        else:
            content = json.dumps(operation.body).encode()
        headers["Content-Type"] = "application/json" if rng.random() < 0.9 else "text/plain"
    return {
        "method": operation.method,
        "url": path,
        "params": params,
        "headers": headers,
        "content": content,
    }


def _signed(request: dict[str, Any], base: str, secret: str, rng: random.Random) -> dict[str, Any]:
    """The request signed as aioboto3 would (mostly), or with a garbled signature."""
    aws = AWSRequest(
        method="POST",
        url=f"{base}{request['url']}",
        data=request["content"] or b"",
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials("mgrecs", secret), "personalize", "us-east-1").add_auth(aws)
    headers: dict[str, Any] = dict(aws.headers.items())
    roll = rng.random()
    if roll < 0.1:
        headers["Authorization"] = (
            headers["Authorization"].replace("Signature=", "Signature=\u00e9").encode("utf-8")
        )
    elif roll < 0.15:
        headers.pop("Authorization")
    elif roll < 0.2:
        headers["X-Amz-Date"] = rng.choice(BAD_DATES)
    return {**request, "headers": headers, "params": {}}


async def fuzz_service(
    service: str,
    base: str,
    key: str,
    ids: dict[str, list[Any]],
    per_operation: int,
    rng: random.Random,
) -> FuzzResult:
    """`per_operation` generated requests to each operation of the service at `base`."""
    result = FuzzResult(service)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        if service == "engine":
            operations = [Operation("POST", p, [], body) for p, body in ENGINE_OPERATIONS.items()]
        else:
            document = (await client.get("/openapi.json")).json()
            operations = operations_of(document)
        result.operations = len(operations)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def send(operation: Operation, request: dict[str, Any]) -> None:
            async with gate:
                try:
                    response = await client.request(**request)
                except httpx.LocalProtocolError:
                    result.unsent += 1
                    return
                except httpx.HTTPError as exc:  # a dropped connection counts as a failure
                    status, text = 599, repr(exc)
                else:
                    status, text = response.status_code, response.text[:200]
            result.requests += 1
            if status >= 500:
                result.server_errors += 1
                result.where[f"{operation.method} {operation.path} -> {status}"] += 1
                if len(result.samples) < MAX_SAMPLES:
                    shown = {k: v for k, v in request.items() if k != "content"}
                    body = (request["content"] or b"")[:200]
                    result.samples.append(f"{status} {text!r} for {shown} body {body!r}")

        for operation in operations:
            requests = [_request(operation, key, ids, rng) for _ in range(per_operation)]
            if service == "engine":
                requests = [_signed(r, base, key, rng) for r in requests]
            await asyncio.gather(*(send(operation, r) for r in requests))
    return result
