"""The API's keys, rate limits and CORS: who gets in, who is slowed down, which origins."""

import re

import pytest

from mgrecs.api import guard
from mgrecs.api.app import create_app
from mgrecs.api.guard import TokenBuckets
from mgrecs.common.settings import Settings
from support.helpers import asgi_client

READ_KEY = "read-key-1"
ADMIN_KEY = "admin-key-1"


async def test_reads_are_open_without_read_keys(settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        response = await client.get("/v1/users/nobody/recommendations")
    assert response.status_code == 404


async def test_read_keys_are_required_when_configured(settings: Settings) -> None:
    settings.api_read_keys = f"other, {READ_KEY}"
    settings.api_admin_keys = ADMIN_KEY
    async with asgi_client(create_app(settings)) as client:
        missing = await client.get("/v1/users/nobody/recommendations")
        wrong = await client.get("/v1/users/nobody/recommendations", headers={"X-API-Key": "x"})
        by_header = await client.get(
            "/v1/users/nobody/recommendations", headers={"X-API-Key": READ_KEY}
        )
        by_bearer = await client.get(
            "/v1/users/nobody/recommendations", headers={"Authorization": f"Bearer {READ_KEY}"}
        )
        by_admin_key = await client.get(
            "/v1/users/nobody/recommendations", headers={"X-API-Key": ADMIN_KEY}
        )
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json() == {
        "detail": "missing API key: send it as X-API-Key or Authorization: Bearer"
    }
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert wrong.json()["detail"].startswith("wrong API key")
    assert [by_header.status_code, by_bearer.status_code, by_admin_key.status_code] == [404] * 3
    assert health.status_code == 200
    assert metrics.status_code == 200


async def test_admin_endpoints_need_a_configured_admin_key(settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        disabled = await client.post("/v1/admin/ticks/infer", headers={"X-API-Key": "any"})
    assert disabled.status_code == 403
    assert "no api_admin_keys configured" in disabled.json()["detail"]

    settings.api_admin_keys = ADMIN_KEY
    settings.api_read_keys = READ_KEY
    async with asgi_client(create_app(settings)) as client:
        no_key = await client.post("/v1/admin/ticks/infer")
        read_key = await client.post("/v1/admin/ticks/infer", headers={"X-API-Key": READ_KEY})
    assert no_key.status_code == 401
    assert read_key.status_code == 401


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's clock stands still: no token refills between a test's requests, however
    slow a loaded machine makes them."""
    monkeypatch.setattr(guard, "monotonic", lambda: 1000.0)


async def test_rate_limit_per_key_answers_429_with_retry_after(
    settings: Settings, frozen_clock: None
) -> None:
    settings.api_read_keys = "k1,k2"
    settings.api_rate_limit_per_second = 2
    async with asgi_client(create_app(settings)) as client:
        first = [
            (await client.get("/v1/users/u/recommendations", headers={"X-API-Key": "k1"}))
            for _ in range(3)
        ]
        other_key = await client.get("/v1/users/u/recommendations", headers={"X-API-Key": "k2"})
        health = await client.get("/healthz")
    assert [r.status_code for r in first] == [404, 404, 429]
    assert first[2].headers["retry-after"] == "1"
    assert "rate limit of 2 requests per second" in first[2].json()["detail"]
    assert other_key.status_code == 404
    assert health.status_code == 200


async def test_rate_limit_per_client_ip_while_reads_are_open(
    settings: Settings, frozen_clock: None
) -> None:
    settings.api_rate_limit_per_second = 1
    async with asgi_client(create_app(settings)) as client:
        codes = [
            (
                await client.get("/v1/users/u/recommendations", headers={"X-API-Key": f"k{n}"})
            ).status_code
            for n in range(2)
        ]
    assert codes == [404, 429]  # an invented key does not buy a fresh bucket


def test_token_bucket_refills_at_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=2.0)
    assert [buckets.take("a", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a", 0.0) == 0.5
    assert buckets.take("a", 0.25) == 0.25
    assert buckets.take("a", 0.75) == 0.0


async def test_cors_allows_only_the_configured_origins(settings: Settings) -> None:
    settings.api_cors_origins = "https://shop.example, https://admin.example"
    settings.api_read_keys = READ_KEY
    preflight_headers = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-API-Key",
    }
    async with asgi_client(create_app(settings)) as client:
        allowed = await client.options(
            "/v1/users/u/recommendations",
            headers={"Origin": "https://shop.example", **preflight_headers},
        )
        refused = await client.options(
            "/v1/users/u/recommendations",
            headers={"Origin": "https://evil.example", **preflight_headers},
        )
        unauthorized = await client.get(
            "/v1/users/u/recommendations", headers={"Origin": "https://admin.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == "https://admin.example"


async def test_no_cors_headers_without_configured_origins(settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        response = await client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_every_answer_carries_the_security_headers(settings: Settings) -> None:
    settings.api_read_keys = READ_KEY
    async with asgi_client(create_app(settings)) as client:
        answers = [
            await client.get("/dashboard"),
            await client.get("/dashboard/static/dashboard.js"),
            await client.get("/v1/users/nobody/recommendations"),  # a 401
            await client.get("/healthz"),
        ]
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, answer.url
        assert "unsafe-inline" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


async def test_the_dashboard_has_no_inline_script_or_style() -> None:
    """The CSP allows the API's own files only: the page must not need more."""
    from mgrecs.api.routes.dashboard import STATIC_DIR

    page = (STATIC_DIR / "dashboard.html").read_text()
    assert "<style" not in page and " style=" not in page
    assert all('src="/' in tag for tag in re.findall(r"<script[^>]*>", page))
    script = (STATIC_DIR / "dashboard.js").read_text()
    assert 'setAttribute("style"' not in script and "style:" not in script


async def test_the_docs_page_is_served_from_the_api_itself(settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "http" not in page.text
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
        assert len(assets) == 4
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
        assert "<script>" not in page.text  # no inline code: the CSP holds for it too
        assert (await client.get("/openapi.json")).status_code == 200


async def test_a_body_over_the_limit_is_413_and_a_422_echoes_no_large_input(
    settings: Settings,
) -> None:
    settings.max_request_bytes = 2000
    settings.max_feedback_events = 1000
    big = {"events": [{"customer_id": "c" * 50}] * 100}
    small = {"events": [{"customer_id": "x" * 90, "product_id": ["a" * 300]}]}
    async with asgi_client(create_app(settings)) as client:
        refused = await client.post("/v1/feedback", json=big)
        invalid = await client.post("/v1/feedback", json=small)
    assert refused.status_code == 413 and "2000 bytes" in refused.json()["detail"]
    assert invalid.status_code == 422
    assert "a" * 300 not in invalid.text
    assert "events.0.product_id" in invalid.json()["detail"]
