"""The request-id middleware (mgrecs.common.correlation), driven as ASGI: the id it echoes,
where the header lands among the app's own headers, and the log context it leaves behind."""

from typing import Any

import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from mgrecs.common.correlation import RequestIdMiddleware, request_id

NAMES = st.sampled_from([b"content-type", b"x-request-id", b"x-other", b"content-length"])
HEADERS = st.lists(st.tuples(NAMES, st.binary(min_size=1, max_size=8)), max_size=6)


async def call(
    app_headers: list[tuple[bytes, bytes]], incoming: bytes | None
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

    await RequestIdMiddleware(app)(scope, receive, send)
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
