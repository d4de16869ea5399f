"""HTTP access to the company's order API: auth, rate limit, retries, throttling.

Timeouts, transport errors and 5xx are retried with exponential backoff and jitter; a 429 waits
exactly its Retry-After. When every try fails the API counts as down: an error log, the
`mgrecs_connector_api_down` gauge at 1, and `ApiUnavailableError` for the caller.
"""

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.ingest.metrics import CONNECTOR_API_DOWN, CONNECTOR_REQUESTS

log = get_logger(__name__)


class ApiUnavailableError(RuntimeError):
    """The company's API kept failing (or refused us) after every retry."""


class _ServerError(Exception):
    """A 5xx or an unreadable body: worth another try."""


class _ThrottledError(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429 Too Many Requests, Retry-After {retry_after}s")
        self.retry_after = retry_after


def _retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default


def _auth_headers(settings: Settings) -> dict[str, str]:
    if settings.connector_auth == "bearer":
        return {"Authorization": f"Bearer {settings.connector_token}"}
    if settings.connector_auth == "api-key":
        return {settings.connector_api_key_header: settings.connector_token}
    return {}


class CompanyClient:
    """GETs pages of the company's API, politely and persistently."""

    def __init__(self, settings: Settings, path: str) -> None:
        self._settings = settings
        self._path = path
        self._client = httpx.AsyncClient(
            base_url=settings.connector_base_url,
            headers=_auth_headers(settings),
            timeout=settings.connector_timeout_seconds,
        )
        rate = settings.connector_requests_per_second
        self._limiter = AsyncLimiter(1, 1 / rate) if rate > 0 else None
        self._backoff = wait_exponential_jitter(
            multiplier=settings.connector_backoff_seconds,
            max=settings.connector_backoff_max_seconds,
            jitter=settings.connector_backoff_seconds,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _ThrottledError):
            return error.retry_after
        return float(self._backoff(state))

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("company_api_retry", attempt=state.attempt_number, error=repr(error))

    async def _get_once(self, params: dict[str, Any]) -> Any:
        if self._limiter is not None:
            async with self._limiter:
                response = await self._client.get(self._path, params=params)
        else:
            response = await self._client.get(self._path, params=params)
        if response.status_code == 429:
            CONNECTOR_REQUESTS.labels("throttled").inc()
            default = self._settings.connector_backoff_seconds
            raise _ThrottledError(_retry_after(response.headers.get("retry-after"), default))
        if response.status_code >= 500:
            CONNECTOR_REQUESTS.labels("server_error").inc()
            raise _ServerError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            CONNECTOR_REQUESTS.labels("refused").inc()
            raise ApiUnavailableError(
                f"company API refused {self._path}: HTTP {response.status_code} "
                f"(check MGRECS_CONNECTOR_AUTH / MGRECS_CONNECTOR_TOKEN): {response.text[:200]}"
            )
        try:
            body = response.json()
        except json.JSONDecodeError as exc:
            CONNECTOR_REQUESTS.labels("unreadable").inc()
            raise _ServerError(f"unreadable JSON body: {exc}") from exc
        CONNECTOR_REQUESTS.labels("ok").inc()
        return body

    async def get(self, params: dict[str, Any]) -> Any:
        """One page's JSON body; ApiUnavailableError once the retries are spent."""
        attempts = self._settings.connector_max_attempts
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=self._wait,
                retry=retry_if_exception_type(
                    (httpx.TransportError, _ServerError, _ThrottledError)
                ),
                before_sleep=self._log_retry,
                reraise=True,
            ):
                with attempt:
                    body = await self._get_once(params)
        except (httpx.TransportError, _ServerError, _ThrottledError) as exc:
            CONNECTOR_API_DOWN.set(1)
            log.error(
                "company_api_down",
                url=f"{self._settings.connector_base_url}{self._path}",
                attempts=attempts,
                error=repr(exc),
            )
            raise ApiUnavailableError(
                f"company API {self._settings.connector_base_url}{self._path} still failing "
                f"after {attempts} attempts: {exc!r}"
            ) from exc
        CONNECTOR_API_DOWN.set(0)
        return body

    async def aclose(self) -> None:
        await self._client.aclose()
