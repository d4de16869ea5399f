"""Interactions received with PutEvents since the model was trained: real-time history.

Kept in memory per engine process: a PutEvents changes that user's next answer at once,
without retraining. Event ids already seen are ignored, so redelivered events count once.
A restarted engine reads the order lines back from PostgreSQL first (`replay`).

Events of an order (the tracker's carry `orderId` and `orderVersion`) are kept per order, in
its newest version only: events of a newer version replace the order's earlier lines (a
correction), an item-less one leaves it none (a cancellation or return), events of an older
version are ignored. So the history is the same whatever order the versions arrive in.
"""

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from mgrecs.engine_service.protocol import Event

MAX_REMEMBERED_EVENT_IDS = 1_000_000
"""Bound on the duplicate-detection memory (event ids, and orders); the oldest are forgotten
first. A forgotten order's lines stay in the history for good."""


@dataclass(frozen=True)
class Recorded:
    accepted: int
    duplicates: int
    """Events seen before, or of an order version older than the one held."""


class Line(NamedTuple):
    """One event (or order line read back) as the store folds it in."""

    user_id: str
    event_id: str | None
    item_id: str | None
    region: str | None
    order_id: str | None = None
    order_version: str | None = None


@dataclass
class _Order:
    """The held version of an order: its user and its lines (event id to item)."""

    version: str
    user_id: str
    lines: dict[str, str | None] = field(default_factory=dict)


class EventStore:
    """Per-user items and region from events, with duplicate event ids dropped."""

    def __init__(self, max_event_ids: int = MAX_REMEMBERED_EVENT_IDS) -> None:
        self._max_event_ids = max_event_ids
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._items: dict[str, dict[str, int]] = {}
        """Per user, each item with the number of held events naming it."""
        self._regions: dict[str, str] = {}
        self._item_users: Counter[str] = Counter()
        self._users: set[str] = set()
        self.events_received = 0
        self.duplicates_ignored = 0
        self.lines_replayed = 0

    def record(self, user_id: str, events: list[Event]) -> Recorded:
        accepted = duplicates = 0
        for event in events:
            tags = event.tags()
            line = Line(
                user_id, event.event_id, event.item_id, tags.region, tags.orderId, tags.orderVersion
            )
            if self._add(line):
                accepted += 1
            else:
                duplicates += 1
        self.events_received += accepted
        self.duplicates_ignored += duplicates
        return Recorded(accepted, duplicates)

    def replay(self, lines: Iterable[Line]) -> int:
        """Order lines read back from the database, remembered as their events would be but
        not counted as received; how many were new (a line-less order counts none)."""
        added = sum(self._add(line) and line.item_id is not None for line in lines)
        self.lines_replayed += added
        return added

    def _add(self, line: Line) -> bool:
        """Fold one event in; False when it was seen before (or its order version is old)."""
        if line.order_id is not None and line.order_version is not None:
            if not self._add_to_order(line, line.order_id, line.order_version):
                return False
        elif line.event_id is not None:
            if line.event_id in self._seen:
                return False
            self._remember(line.event_id)
            self._hold(line.user_id, line.item_id)
        else:
            self._hold(line.user_id, line.item_id)
        self._users.add(line.user_id)
        if line.region is not None:
            self._regions[line.user_id] = line.region
        return True

    def _add_to_order(self, line: Line, order_id: str, version: str) -> bool:
        """Hold the line in its order's version; False when that version is older than the
        held one, or already has the line."""
        order = self._orders.get(order_id)
        if order is not None and version < order.version:
            return False
        newer = order is None or version > order.version
        if order is None or version > order.version:
            if order is not None:
                self._release_all(order)
            order = self._orders[order_id] = _Order(version, line.user_id)
            if len(self._orders) > self._max_event_ids:
                self._orders.popitem(last=False)
        if line.item_id is None:
            return newer  # a version without purchases (a cancellation): nothing to hold
        key = line.event_id if line.event_id is not None else f"item:{line.item_id}"
        if key in order.lines:
            return False
        order.lines[key] = line.item_id
        if line.event_id is not None:  # the same event sent without its order counts once
            self._remember(line.event_id)
        self._hold(order.user_id, line.item_id)
        return True

    def _hold(self, user_id: str, item_id: str | None) -> None:
        if item_id is None:
            return
        items = self._items.setdefault(user_id, {})
        if item_id not in items:
            items[item_id] = 0
            self._item_users[item_id] += 1
        items[item_id] += 1

    def _release_all(self, order: _Order) -> None:
        """The order's lines leave its user's history (a newer version replaces them)."""
        items = self._items.get(order.user_id, {})
        for item_id in order.lines.values():
            if item_id is None or item_id not in items:
                continue
            items[item_id] -= 1
            if items[item_id] == 0:
                del items[item_id]
                self._item_users[item_id] -= 1
                if self._item_users[item_id] == 0:
                    del self._item_users[item_id]

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        if len(self._seen) > self._max_event_ids:
            self._seen.popitem(last=False)

    def items(self, user_id: str) -> list[str]:
        """Items of the user's held events, first seen first."""
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
