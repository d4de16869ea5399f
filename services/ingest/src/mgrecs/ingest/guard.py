"""API-key auth of the push endpoint, as one pure ASGI middleware, outside the body limit.

Decided before the app reads the body: an unknown caller gets 401 without a byte of its body
being read; a known one's body then meets the limit every HTTP service has
(mgrecs.common.body_limit).
"""

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mgrecs.common import body_limit
from mgrecs.common.api_keys import key_matches, parse_keys, presented_key
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.ingest.metrics import REQUESTS_REJECTED

log = get_logger(__name__)


def api_keys(settings: Settings) -> list[bytes]:
    """`settings.ingest_api_keys` as a list (comma-separated, blanks ignored)."""
    return parse_keys(settings.ingest_api_keys)


class PushGuard:
    """Guards the paths in `paths`; every other path (health, metrics, contract) stays open."""

    def __init__(self, app: ASGIApp, settings: Settings, paths: Sequence[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.keys = api_keys(settings)

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
        await self.app(scope, receive, send)


def too_large(limit: int) -> Response:
    """The body limit's refusal (mgrecs.common.body_limit), counted."""
    REQUESTS_REJECTED.labels("too_large").inc()
    return body_limit.too_large(limit)
