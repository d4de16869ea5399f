"""API keys as the HTTP services accept them, shared by ingest's push guard and the API's.

A key travels as `X-API-Key` or `Authorization: Bearer`; it is compared in constant time
against every configured key and never logged.
"""

import hmac
from collections.abc import Sequence

from starlette.datastructures import Headers


def parse_keys(value: str) -> list[bytes]:
    """A comma-separated keys setting as a list (blanks ignored)."""
    return [key.strip().encode() for key in value.split(",") if key.strip()]


def presented_key(headers: Headers) -> bytes | None:
    """The key a request carries: `X-API-Key`, else `Authorization: Bearer <key>`."""
    if key := headers.get("x-api-key", "").strip():
        return key.encode("latin-1")
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip().encode("latin-1")
    return None


def key_matches(presented: bytes, keys: Sequence[bytes]) -> bool:
    """Constant-time comparison against every key (no early exit reveals which one)."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched
