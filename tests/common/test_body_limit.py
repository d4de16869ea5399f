"""The body limit every HTTP service has (mgrecs.common.body_limit), driven as ASGI: whatever
the chunking, a body over the limit never reaches the app and one within it arrives whole."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from mgrecs.common.body_limit import BodyLimit

LIMIT = 64


async def call(chunks: list[bytes], declared: bool) -> tuple[int, bytes | None]:
    """The status answered and the body the app read (None: the app was not reached)."""
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    total = sum(len(chunk) for chunk in chunks)
    headers = (
        [(b"content-length", str(total).encode())]
        if declared
        else [(b"transfer-encoding", b"chunked")]
    )
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await BodyLimit(app, LIMIT)(scope, receive, send)
    return sent[0]["status"], seen[0] if seen else None


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=6), declared=st.booleans())
async def test_a_body_reaches_the_app_whole_or_not_at_all(
    chunks: list[bytes], declared: bool
) -> None:
    status, body = await call(chunks, declared)
    if sum(len(chunk) for chunk in chunks) > LIMIT:
        assert (status, body) == (413, None)
    else:
        assert (status, body) == (200, b"".join(chunks))


async def test_a_garbled_content_length_is_refused() -> None:
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"-1")]}
    await BodyLimit(app, LIMIT)(scope, receive, send)
    assert sent[0]["status"] == 413 and seen == []
