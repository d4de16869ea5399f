"""API-key auth and the body size limit of the push endpoint, as one pure ASGI middleware.

Both are decided before the app reads the body: an unknown caller gets 401 without a byte of
its body being parsed, and a body over the limit gets 413 after at most the limit was read
(by Content-Length up front, or while a chunked body arrives), so it never reaches the JSON
parser and memory stays bounded.
"""

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mgrecs.common.api_keys import key_matches, parse_keys, presented_key
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.ingest.metrics import REQUESTS_REJECTED

log = get_logger(__name__)


class _ClientGoneError(Exception):
    """The client disconnected before its body was complete: nobody to answer."""


def api_keys(settings: Settings) -> list[bytes]:
    """`settings.ingest_api_keys` as a list (comma-separated, blanks ignored)."""
    return parse_keys(settings.ingest_api_keys)


class PushGuard:
    """Guards the paths in `paths`; every other path (health, metrics, contract) stays open."""

    def __init__(self, app: ASGIApp, settings: Settings, paths: Sequence[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.keys = api_keys(settings)
        self.limit = settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.keys:
            presented = presented_key(headers)
            if presented is None or not key_matches(presented, self.keys):
                reason = "missing" if presented is None else "wrong"
                log.warning("push_unauthorized", reason=reason, path=scope["path"])
                REQUESTS_REJECTED.labels("unauthorized").inc()
                message = f"{reason} API key: send it as X-API-Key or Authorization: Bearer"
                response = JSONResponse({"detail": message}, status_code=401)
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read_body(receive)
        except _ClientGoneError:
            return
        if body is None:
            await self._too_large(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            """The body read above once, then the client's own messages (e.g. disconnect)."""
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it grows past the limit (the rest stays unread)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGoneError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        REQUESTS_REJECTED.labels("too_large").inc()
        message = f"the request body is larger than {self.limit} bytes (max_request_bytes)"
        await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
