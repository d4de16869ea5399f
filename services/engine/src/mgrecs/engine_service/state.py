"""What one engine process holds: its settings, accepted keys, filters, events (and their
feed through Kafka) and served model."""

from dataclasses import dataclass, field

import asyncpg

from mgrecs.common.settings import Settings
from mgrecs.engine_service.events import EventStore
from mgrecs.engine_service.feed import Feed
from mgrecs.engine_service.filtering import Filters
from mgrecs.engine_service.registry import ModelRegistry
from mgrecs.engine_service.sigv4 import parse_credentials


@dataclass
class EngineState:
    settings: Settings
    secrets: dict[str, str] = field(init=False)
    events: EventStore = field(default_factory=EventStore)
    registry: ModelRegistry = field(init=False)
    filters: Filters = field(init=False)
    feed: Feed = field(init=False)
    pool: asyncpg.Pool | None = None

    def __post_init__(self) -> None:
        # Parsed at start: a malformed MGRECS_ENGINE_CREDENTIALS stops the process early.
        self.secrets = parse_credentials(self.settings.engine_credentials)
        self.filters = Filters(self.settings)
        self.registry = ModelRegistry(self.settings)
        self.feed = Feed(self.settings, self.events)
