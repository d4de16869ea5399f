"""The `cli_env` fixture: the CLI reads its settings from the environment, so point that at
the test's database, broker and topics (and forget the cached settings around the test)."""

from collections.abc import Iterator

import pytest

from mgrecs.common.settings import Settings, get_settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test's settings, as the CLI will read them."""
    monkeypatch.setenv("MGRECS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MGRECS_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("MGRECS_TOPIC_PREFIX", settings.topic_prefix)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()
