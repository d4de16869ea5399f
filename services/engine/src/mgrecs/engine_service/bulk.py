"""Reading the tracker's bulk of PutEvents calls (`/events/bulk`) at the rate it comes.

Pydantic's `BulkPutEventsRequest` builds a model per event and runs Python validators on
each (a time's range, `properties` a JSON object): most of the engine's CPU per event at the
tracker's rate (bench/RESULTS.md, issue 18 item 4: engine side). A bulk as the tracker
writes it (mgrecs.tracker.bulk) is read here instead with orjson and plain checks, straight
into the history's lines, `properties` parsed once. The plain reading only ever accepts what
`BulkPutEventsRequest` accepts, with the same values: anything it is not sure of (a member
of another type, a time as text, a field under its Python name, any limit crossed) sends the
body to pydantic, which accepts it as before or names what is wrong (AwsError 400, at most
`protocol.MAX_PROBLEMS` problems). So the answers are the pydantic path's, only cheaper.
"""

import time
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from mgrecs.common.personalize import MAX_BULK_EVENTS
from mgrecs.common.schemas import EARLIEST, MAX_AHEAD
from mgrecs.engine_service.events import Line, collector_paused
from mgrecs.engine_service.protocol import (
    MAX_CALL_EVENTS,
    MAX_ID,
    MAX_PROPERTIES,
    BulkPutEventsRequest,
    lines_of,
    parse,
)

_EARLIEST = EARLIEST.timestamp()
_AHEAD = MAX_AHEAD.total_seconds()
_CALL_FIELDS = frozenset({"tracking_id", "user_id", "session_id", "event_list"})
_EVENT_FIELDS = frozenset({"event_id", "event_type", "event_value", "item_id", "sent_at"})
"""Members' Python names, which pydantic takes too (populate_by_name): left to it."""


@dataclass(frozen=True)
class BulkEvents:
    """A valid bulk: each call's tracking id (in order), and every event as a history line."""

    tracking_ids: list[str]
    lines: list[Line]


def read_bulk(body: bytes) -> BulkEvents:
    """The bulk in `body`, or AwsError 400 (InvalidInputException) naming what is wrong."""
    with collector_paused():
        plain = read_plain(body)
    if plain is not None:
        return plain
    request = parse(BulkPutEventsRequest, body)
    return BulkEvents(
        [call.tracking_id for call in request.calls],
        [
            line
            for call in request.calls
            for line in lines_of(call.user_id or call.session_id, call.event_list)
        ],
    )


def _is_id(value: Any) -> TypeGuard[str]:
    return type(value) is str and 0 < len(value) <= MAX_ID


def read_plain(body: bytes) -> BulkEvents | None:
    """The bulk in `body` when it is plainly valid (as the tracker writes it), else None:
    then pydantic decides. One loop over the events, checks inline: it runs per event."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict:
        return None
    calls = document.get("calls")
    if type(calls) is not list or not calls:
        return None
    latest = time.time() + _AHEAD
    tracking_ids: list[str] = []
    lines: list[Line] = []
    for call in calls:
        if type(call) is not dict or not _CALL_FIELDS.isdisjoint(call):
            return None
        tracking_id, user_id = call.get("trackingId"), call.get("userId")
        session_id, events = call.get("sessionId"), call.get("eventList")
        if not (_is_id(tracking_id) and _is_id(session_id)):
            return None
        if user_id is not None and not _is_id(user_id):
            return None
        if type(events) is not list or not 0 < len(events) <= MAX_CALL_EVENTS:
            return None
        user = user_id or session_id
        tracking_ids.append(tracking_id)
        for event in events:
            if type(event) is not dict or not _EVENT_FIELDS.isdisjoint(event):
                return None
            event_id, item_id = event.get("eventId"), event.get("itemId")
            event_type, sent_at = event.get("eventType"), event.get("sentAt")
            if not _is_id(event_type):
                return None
            if event_id is not None and not (type(event_id) is str and 0 < len(event_id) <= MAX_ID):
                return None
            if item_id is not None and not (type(item_id) is str and 0 < len(item_id) <= MAX_ID):
                return None
            # botocore's epoch seconds (orjson reads no NaN, no infinity); a number past
            # 2e10 pydantic would read as milliseconds, but `latest` is far below that
            if type(sent_at) is not float and type(sent_at) is not int:
                return None
            if not _EARLIEST <= sent_at <= latest:
                return None
            value = event.get("eventValue")
            if value is not None and type(value) is not float and type(value) is not int:
                return None
            properties = event.get("properties")
            region = order_id = version = None
            if properties is not None:
                if type(properties) is not str or len(properties) > MAX_PROPERTIES:
                    return None
                try:
                    members = orjson.loads(properties)
                except orjson.JSONDecodeError:
                    return None
                if type(members) is not dict:
                    return None
                region, order_id = members.get("region"), members.get("orderId")
                version = members.get("orderVersion")
                # `protocol.Event.tags`: a member is read when it is non-empty text
                if not (isinstance(region, str) and region):
                    region = None
                if not (isinstance(order_id, str) and order_id):
                    order_id = None
                if not (isinstance(version, str) and version):
                    version = None
            lines.append(Line(user, event_id, item_id, region, order_id, version))
        if len(lines) > MAX_BULK_EVENTS:
            return None
    return BulkEvents(tracking_ids, lines)
