"""Fixtures of the API tests: the app over ASGI on the test's settings."""

from collections.abc import AsyncIterator

import httpx
import pytest

from mgrecs.api.app import create_app
from mgrecs.common.settings import Settings
from support.helpers import asgi_client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the test's settings; a test file needing other settings overrides it."""
    async with asgi_client(create_app(settings)) as http:
        yield http
