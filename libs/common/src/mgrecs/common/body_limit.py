"""The request-body limit of every HTTP service (api, ingest, engine), as one ASGI middleware.

Decided before the app reads a byte: a declared `Content-Length` over the limit is a 413 at
once; a chunked body is read up to the limit while it arrives and refused as soon as it grows
past it, so no parser (JSON, SigV4) ever sees it and memory stays bounded.
"""

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _ClientGoneError(Exception):
    """The client disconnected before its body was complete: nobody to answer."""


def too_large(limit: int) -> Response:
    """The default refusal: 413 naming the limit and its setting."""
    message = f"the request body is larger than {limit} bytes (MGRECS_MAX_REQUEST_BYTES)"
    return JSONResponse({"detail": message}, status_code=413)


class BodyLimit:
    """Refuses bodies over `limit` bytes with `refuse(limit)` (a 413)."""

    def __init__(
        self, app: ASGIApp, limit: int, refuse: Callable[[int], Response] = too_large
    ) -> None:
        self.app = app
        self.limit = limit
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            # The server holds the body to its declared length: checking it is enough.
            if not declared.strip().isdigit() or int(declared) > self.limit:
                await self.refuse(self.limit)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if "chunked" not in headers.get("transfer-encoding", "").lower():
            await self.app(scope, receive, send)  # no body
            return
        try:
            body = await self._read_body(receive)
        except _ClientGoneError:
            return
        if body is None:
            await self.refuse(self.limit)(scope, receive, send)
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
