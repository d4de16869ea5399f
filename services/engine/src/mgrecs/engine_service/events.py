"""Interactions received with PutEvents since the model was trained: real-time history.

Kept in memory per engine process: a PutEvents changes that user's next answer at once,
without retraining. Event ids already seen are ignored, so redelivered events count once.
Every replica also folds in what any replica accepted (`follow`, from the `engine-events`
topic: mgrecs.engine_service.feed), so its own events come back harmlessly.

Each held line carries the time an engine accepted it (epoch ms, the topic record's
timestamp): `prune` drops the lines accepted before a newly served model was trained, which
that model learnt from PostgreSQL, so memory stays bounded and a long-running replica holds
what a restarted one reads back from the topic.

Events of an order (the tracker's carry `orderId` and `orderVersion`) are kept per order, in
its newest version only: events of a newer version replace the order's earlier lines (a
correction), an item-less one leaves it none (a cancellation or return), events of an older
version are ignored. So the history is the same whatever order the versions arrive in.
"""

import gc
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

MAX_REMEMBERED_EVENT_IDS = 1_000_000
"""Bound on the duplicate-detection memory (event ids, and orders); the oldest are forgotten
first. A forgotten order's lines stay in the history for good."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a bulk's thousands of events are
    read and folded in (synchronous code, milliseconds): it would otherwise run tens of
    times over the young objects, each still alive, and cost as much as the reading
    (bench/RESULTS.md, issue 18 item 4: engine side). Nothing else runs meanwhile; the
    next allocation after it collects as usual."""
    if not gc.isenabled():  # held off already (an enclosing pause): leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class Recorded:
    accepted: int
    duplicates: int
    """Events seen before, or of an order version older than the one held."""


@dataclass(slots=True)
class Line:
    """One event as the store folds it in (and as `engine-events` carries it: orjson writes
    it as an `AcceptedEvent` without Python code per line)."""

    user_id: str
    event_id: str | None
    item_id: str | None
    region: str | None
    order_id: str | None = None
    order_version: str | None = None


@dataclass(slots=True)
class _Order:
    """The held version of an order: its user and its lines (event id to item)."""

    version: str
    user_id: str
    at: int
    """When an engine accepted this version's first line (epoch ms)."""
    lines: dict[str, str | None]


class _Loose(NamedTuple):
    """A held event outside any order, with when it was accepted (epoch ms)."""

    at: int
    user_id: str
    event_id: str | None
    item_id: str | None


class EventStore:
    """Per-user items and region from events, with duplicate event ids dropped."""

    def __init__(self, max_event_ids: int = MAX_REMEMBERED_EVENT_IDS) -> None:
        self._max_event_ids = max_event_ids
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._items: dict[str, dict[str, int]] = {}
        """Per user, each item with the number of held events naming it."""
        self._regions: dict[str, str] = {}
        self._item_users: dict[str, int] = {}
        self._loose: list[_Loose] = []
        self._user_at: dict[str, int] = {}
        """Per user, when their newest held line was accepted (epoch ms)."""
        self.cutoff = 0
        """Lines accepted before this (epoch ms) are dropped: the served model has them."""
        self.events_received = 0
        self.duplicates_ignored = 0
        self.events_followed = 0

    def record(self, lines: Sequence[Line], at: int) -> Recorded:
        """The events of this process's PutEvents calls, accepted at `at` (epoch ms)."""
        accepted = self._fold(lines, at)
        duplicates = len(lines) - accepted
        self.events_received += accepted
        self.duplicates_ignored += duplicates
        return Recorded(accepted, duplicates)

    def follow(self, lines: Iterable[Line], at: int) -> int:
        """Events another call accepted (read from `engine-events`), remembered as their
        events would be but not counted as received here; how many were new."""
        added = self._fold(lines, at)
        self.events_followed += added
        return added

    def _fold(self, lines: Iterable[Line], at: int) -> int:
        """Fold the lines in, one after the other; how many were new. A line is not when it
        was seen before, its order version is old, or it was accepted before the cutoff.
        One loop with the store's parts at hand: thousands of lines come in a call."""
        if at < self.cutoff:
            return 0
        added = 0
        seen, orders, user_at, regions = self._seen, self._orders, self._user_at, self._regions
        bound = self._max_event_ids
        for line in lines:
            user_id, event_id, item_id = line.user_id, line.event_id, line.item_id
            order_id, version = line.order_id, line.order_version
            if order_id is not None and version is not None:
                # Held in its order's version; not when that version is older than the held
                # one, or already has the line.
                order = orders.get(order_id)
                if order is None or version > order.version:
                    if order is not None:
                        self._release_all(order)
                    order = orders[order_id] = _Order(version, user_id, at, {})
                    if len(orders) > bound:
                        orders.popitem(last=False)
                    newer = True
                elif version < order.version:
                    continue
                else:
                    newer = False
                if item_id is None:
                    if not newer:  # a version without purchases (a cancellation)
                        continue
                else:
                    key = event_id if event_id is not None else f"item:{item_id}"
                    held = order.lines
                    if key in held:
                        continue
                    held[key] = item_id
                    if event_id is not None:  # the same event sent without its order: once
                        seen[event_id] = None
                        if len(seen) > bound:
                            seen.popitem(last=False)
                    self._hold(order.user_id, item_id)
            else:
                if event_id is not None:
                    if event_id in seen:
                        continue
                    seen[event_id] = None
                    if len(seen) > bound:
                        seen.popitem(last=False)
                self._loose.append(_Loose(at, user_id, event_id, item_id))
                if item_id is not None:
                    self._hold(user_id, item_id)
            if user_at.get(user_id, at) <= at:
                user_at[user_id] = at
            if line.region is not None:
                regions[user_id] = line.region
            added += 1
        return added

    def _hold(self, user_id: str, item_id: str) -> None:
        items = self._items.get(user_id)
        if items is None:
            items = self._items[user_id] = {}
        count = items.get(item_id)
        if count is None:
            items[item_id] = 1
            self._item_users[item_id] = self._item_users.get(item_id, 0) + 1
        else:
            items[item_id] = count + 1

    def _release_all(self, order: _Order) -> None:
        """The order's lines leave its user's history (a newer version replaces them)."""
        for item_id in order.lines.values():
            self._release(order.user_id, item_id)

    def _release(self, user_id: str, item_id: str | None) -> None:
        items = self._items.get(user_id, {})
        if item_id is None or item_id not in items:
            return
        items[item_id] -= 1
        if items[item_id] == 0:
            del items[item_id]
            self._item_users[item_id] -= 1
            if self._item_users[item_id] == 0:
                del self._item_users[item_id]

    def prune(self, cutoff: int) -> int:
        """Drop every line accepted before `cutoff` (epoch ms; it only moves forward) and
        forget their event ids, orders and users, as a replica started now never saw them;
        how many lines went."""
        if cutoff <= self.cutoff:
            return 0
        self.cutoff = cutoff
        dropped = 0
        kept: list[_Loose] = []
        for loose in self._loose:
            if loose.at >= cutoff:
                kept.append(loose)
                continue
            self._release(loose.user_id, loose.item_id)
            if loose.event_id is not None:
                self._seen.pop(loose.event_id, None)
            dropped += 1
        self._loose = kept
        for order_id in [key for key, order in self._orders.items() if order.at < cutoff]:
            order = self._orders.pop(order_id)
            self._release_all(order)
            for key in order.lines:
                self._seen.pop(key, None)
            dropped += len(order.lines)
        for user_id in [user for user, at in self._user_at.items() if at < cutoff]:
            del self._user_at[user_id]
            self._regions.pop(user_id, None)
            if not self._items.get(user_id, True):
                del self._items[user_id]
        return dropped

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
        """How many users have at least one held (non-duplicate) event."""
        return len(self._user_at)

    @property
    def lines_held(self) -> int:
        """Events held (outside orders, and order lines): what memory grows with."""
        return len(self._loose) + sum(len(order.lines) for order in self._orders.values())
