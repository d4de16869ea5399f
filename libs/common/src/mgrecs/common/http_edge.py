"""What every HTTP service does around each request, as one pure ASGI layer: the request's
`X-Request-ID` (`correlation`), its count and latency (`metrics`) and the service's fixed
response headers. One call frame and one `send` wrapper a request instead of one per concern
(three layers in the API: bench/RESULTS.md, the api's per-request floor, third pass)."""

import time
import uuid
from collections.abc import Sequence

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mgrecs.common.correlation import HEADER_NAME, VALID, header_value, request_id, with_header
from mgrecs.common.metrics import Children, HttpMetrics


class HttpEdge:
    """Takes the request's `X-Request-ID` (or makes one), binds it as `request_id` in the log
    context and the `request_id` variable for the request, and echoes it in the response,
    followed by `headers`; counts and times every HTTP request in `metrics`, labelled by
    route template (bounded labels)."""

    def __init__(
        self, app: ASGIApp, metrics: HttpMetrics, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.headers = list(headers)
        self._requests = Children(metrics.requests)
        self._latency = Children(metrics.latency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header_value(scope["headers"], HEADER_NAME)
        current = incoming if incoming and VALID.fullmatch(incoming) else uuid.uuid4().hex
        echoed = (HEADER_NAME, current.encode("latin-1"))
        extra = self.headers
        status = 500

        async def send_at_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = with_header(message["headers"], echoed)
                headers += extra
                message["headers"] = headers
            await send(message)

        token = request_id.set(current)
        # Tokens, not `bound_contextvars`: that one copies the whole context to save what it
        # replaces, on every request; a token restores the same.
        bound = structlog.contextvars.bind_contextvars(request_id=current)
        try:
            start = time.perf_counter()
            try:
                await self.app(scope, receive, send_at_edge)
            finally:
                self._observe(scope, status, time.perf_counter() - start)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            request_id.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        self._requests(method, route, str(status)).inc()
        self._latency(method, route).observe(seconds)
