"""The request id of `HttpEdge` (mgrecs.common.http_edge, ids from mgrecs.common.correlation),
driven as ASGI: the id it echoes, where the header lands among the app's own headers and the
edge's fixed ones, the log context it leaves behind, and the request counted and timed."""

from typing import Any

import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from mgrecs.common.correlation import request_id
from mgrecs.common.http_edge import HttpEdge
from mgrecs.common.metrics import http_metrics

METRICS = http_metrics("correlation_test")
EDGE_HEADERS = [(b"x-edge", b"1"), (b"x-frame-options", b"DENY")]

NAMES = st.sampled_from([b"content-type", b"x-request-id", b"x-other", b"content-length"])
HEADERS = st.lists(st.tuples(NAMES, st.binary(min_size=1, max_size=8)), max_size=6)


async def call(
    app_headers: list[tuple[bytes, bytes]],
    incoming: bytes | None,
    edge_headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[list[tuple[bytes, bytes]], dict[str, Any], str | None]:
    """The headers answered, and the log context and `request_id` the app saw."""
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["context"] = structlog.contextvars.get_contextvars()
        seen["request_id"] = request_id.get()
        await send({"type": "http.response.start", "status": 200, "headers": list(app_headers)})
        await send({"type": "http.response.body", "body": b""})

    headers = [] if incoming is None else [(b"x-request-id", incoming)]
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await HttpEdge(app, METRICS, edge_headers or [])(scope, receive, send)
    return sent[0]["headers"], seen["context"], seen["request_id"]


@settings(max_examples=100, deadline=None)
@given(app_headers=HEADERS)
async def test_the_id_is_set_among_the_apps_headers_as_starlette_sets_a_header(
    app_headers: list[tuple[bytes, bytes]],
) -> None:
    answered, _, _ = await call(app_headers, b"req-7")
    expected: dict[str, Any] = {"headers": list(app_headers)}
    MutableHeaders(scope=expected)["X-Request-ID"] = "req-7"
    assert answered == expected["headers"]


async def test_a_valid_incoming_id_is_bound_for_the_request_and_unbound_after() -> None:
    structlog.contextvars.bind_contextvars(request_id="outer", other=1)
    try:
        answered, context, current = await call([], b"req-42")
        assert (b"x-request-id", b"req-42") in answered
        assert context == {"request_id": "req-42", "other": 1}
        assert current == "req-42"
        assert structlog.contextvars.get_contextvars() == {"request_id": "outer", "other": 1}
        assert request_id.get() is None
    finally:
        structlog.contextvars.clear_contextvars()


async def test_an_invalid_incoming_id_is_replaced_by_a_new_one() -> None:
    answered, context, current = await call([], b"bad id\r\n")
    assert current is not None and current != "bad id\r\n" and len(current) == 32
    assert (b"x-request-id", current.encode()) in answered
    assert context == {"request_id": current}
    assert structlog.contextvars.get_contextvars() == {}


@settings(max_examples=50, deadline=None)
@given(app_headers=HEADERS)
async def test_the_edges_own_headers_follow_the_id(app_headers: list[tuple[bytes, bytes]]) -> None:
    """As the API's security headers were added by a layer outside the request id's."""
    answered, _, _ = await call(app_headers, b"req-8", EDGE_HEADERS)
    expected: dict[str, Any] = {"headers": list(app_headers)}
    MutableHeaders(scope=expected)["X-Request-ID"] = "req-8"
    assert answered == expected["headers"] + EDGE_HEADERS


def _count(status: str) -> float:
    labels = {"method": "GET", "route": "unmatched", "status": status}
    value = REGISTRY.get_sample_value("mgrecs_correlation_test_requests_total", labels)
    return value or 0.0


def _timed() -> float:
    labels = {"method": "GET", "route": "unmatched"}
    value = REGISTRY.get_sample_value("mgrecs_correlation_test_request_seconds_count", labels)
    return value or 0.0


async def test_each_request_is_counted_by_status_and_timed() -> None:
    before, timed = _count("200"), _timed()
    await call([], None)
    await call([], b"req-9")
    assert _count("200") == before + 2
    assert _timed() == timed + 2


async def test_a_failing_app_is_counted_as_500_and_unbinds_the_id() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": []}
    before = _count("500")
    try:
        await HttpEdge(app, METRICS)(scope, receive, send)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the app's error propagates")
    assert _count("500") == before + 1
    assert request_id.get() is None
    assert structlog.contextvars.get_contextvars() == {}
