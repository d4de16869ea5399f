"""Interactions received with PutEvents since the model was trained: real-time history.

Kept in memory per engine process: a PutEvents changes that user's next answer at once,
without retraining. Event ids already seen are ignored, so redelivered events count once.
A restarted engine reads the order lines back from PostgreSQL first (`replay`).
"""

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from mgrecs.engine_service.protocol import Event

MAX_REMEMBERED_EVENT_IDS = 1_000_000
"""Bound on the duplicate-detection memory; the oldest ids are forgotten first."""


@dataclass(frozen=True)
class Recorded:
    accepted: int
    duplicates: int


class EventStore:
    """Per-user items and region from events, with duplicate event ids dropped."""

    def __init__(self, max_event_ids: int = MAX_REMEMBERED_EVENT_IDS) -> None:
        self._max_event_ids = max_event_ids
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._items: dict[str, dict[str, None]] = {}
        self._regions: dict[str, str] = {}
        self._item_users: Counter[str] = Counter()
        self._users: set[str] = set()
        self.events_received = 0
        self.duplicates_ignored = 0
        self.lines_replayed = 0

    def record(self, user_id: str, events: list[Event]) -> Recorded:
        accepted = duplicates = 0
        for event in events:
            if self._add(user_id, event.event_id, event.item_id, event.region):
                accepted += 1
            else:
                duplicates += 1
        self.events_received += accepted
        self.duplicates_ignored += duplicates
        return Recorded(accepted, duplicates)

    def replay(self, lines: Iterable[tuple[str, str, str, str | None]]) -> int:
        """Order lines read back from the database (user, event id, item, region), remembered
        as their events would be but not counted as received; how many were new."""
        added = sum(self._add(*line) for line in lines)
        self.lines_replayed += added
        return added

    def _add(
        self, user_id: str, event_id: str | None, item_id: str | None, region: str | None
    ) -> bool:
        """Fold one event in; False when its id was seen before."""
        if event_id is not None:
            if event_id in self._seen:
                return False
            self._remember(event_id)
        self._users.add(user_id)
        if region is not None:
            self._regions[user_id] = region
        if item_id is not None:
            items = self._items.setdefault(user_id, {})
            if item_id not in items:
                items[item_id] = None
                self._item_users[item_id] += 1
        return True

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        if len(self._seen) > self._max_event_ids:
            self._seen.popitem(last=False)

    def items(self, user_id: str) -> list[str]:
        """Items of the user's events, first seen first."""
        return list(self._items.get(user_id, ()))

    def region(self, user_id: str) -> str | None:
        return self._regions.get(user_id)

    def popular(self) -> list[tuple[str, int]]:
        """Items by number of distinct users with an event for them, most first."""
        return sorted(self._item_users.items(), key=lambda pair: (-pair[1], pair[0]))

    @property
    def users(self) -> int:
        """How many users sent at least one (non-duplicate) event."""
        return len(self._users)
