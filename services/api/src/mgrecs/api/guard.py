"""API keys and rate limits of the API, as one pure ASGI middleware.

`/v1/admin/`, `/v1/status` and the reports (`/v1/quality/`, `/v1/experiments/{id}`,
`/v1/reports/`) always
need an admin key (403 while none is configured); the other `/v1/` paths, feedback included,
need a read or admin key when `api_read_keys` is set (always, outside `env=development`: the
API does not start without read keys there). Health, readiness,
metrics and the OpenAPI docs stay open. Each key (or client IP while reads are open) has a
token bucket in this process's memory: with N API instances a caller may get up to N times
the limit.
"""

import hashlib
import math
from collections import OrderedDict
from time import monotonic

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mgrecs.common.api_keys import key_matches, parse_keys, presented_key
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings

log = get_logger(__name__)

GUARDED_PREFIX = "/v1/"
ADMIN_PREFIXES = ("/v1/admin/", "/v1/quality/", "/v1/experiments/", "/v1/reports/")
"""Administration, and the reports (data quality, an experiment's results): operators'
pages, never the frontend's. The list of experiments (`/v1/experiments`) is a read."""
ADMIN_PATHS = ("/v1/status",)
"""Admin pages outside ADMIN_PREFIXES (names the issue gave)."""
MAX_BUCKETS = 10_000
"""Callers remembered at once (least recently seen forgotten first): bounded memory."""


def _is_admin(path: str) -> bool:
    return path.startswith(ADMIN_PREFIXES) or path.rstrip("/") in ADMIN_PATHS


class TokenBuckets:
    """One token bucket per caller: `rate` tokens a second, holding at most `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str, now: float) -> float:
        """0.0 when `caller` may go on (a token is spent), else the seconds until it may."""
        tokens, last = self._buckets.pop(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return wait


class ApiGuard:
    """Decides on the headers alone, before any route runs or the body is read."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.read_keys = parse_keys(settings.api_read_keys)
        self.admin_keys = parse_keys(settings.api_admin_keys)
        rate = settings.api_rate_limit_per_second
        self.buckets = TokenBuckets(rate, max(1.0, rate)) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(GUARDED_PREFIX):
            await self.app(scope, receive, send)
            return
        presented = presented_key(Headers(scope=scope))
        refusal = self._refusal(path, presented)
        if refusal is None and self.buckets is not None:
            keyed = _is_admin(path) or bool(self.read_keys)
            refusal = self._rate_limited(scope, presented if keyed else None)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, path: str, presented: bytes | None) -> JSONResponse | None:
        """401/403 for a caller without the key `path` needs; None lets it through."""
        if _is_admin(path):
            if not self.admin_keys:
                message = "the admin endpoints are disabled: no api_admin_keys configured"
                return JSONResponse({"detail": message}, status_code=403)
            keys = self.admin_keys
        elif self.read_keys:
            keys = self.read_keys + self.admin_keys
        else:
            return None
        if presented is not None and key_matches(presented, keys):
            return None
        reason = "missing" if presented is None else "wrong"
        log.warning("api_unauthorized", reason=reason, path=path)
        message = f"{reason} API key: send it as X-API-Key or Authorization: Bearer"
        return JSONResponse(
            {"detail": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    def _rate_limited(self, scope: Scope, key: bytes | None) -> JSONResponse | None:
        """429 with Retry-After once the caller's bucket is empty: the bucket of `key` (an
        accepted key), else of the client's IP."""
        assert self.buckets is not None
        if key is not None:
            caller = "key:" + hashlib.sha256(key).hexdigest()
        else:
            client = scope.get("client")
            caller = "ip:" + (client[0] if client else "unknown")
        wait = self.buckets.take(caller, monotonic())
        if wait <= 0:
            return None
        limit = self.buckets.rate
        return JSONResponse(
            {"detail": f"rate limit of {limit:g} requests per second exceeded; retry later"},
            status_code=429,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
