"""Where every accepted PutEvents call lands, whichever route it came by (PutEvents or the
tracker's bulk): one place to change how events are taken in."""

from collections.abc import Sequence

from mgrecs.engine_service.events import Recorded
from mgrecs.engine_service.protocol import Event
from mgrecs.engine_service.state import EngineState


async def accept(state: EngineState, calls: Sequence[tuple[str, list[Event]]]) -> Recorded:
    """Record each call's events (a user id and that user's events, in order) in the
    process's history; how many were new and how many seen before."""
    accepted = duplicates = 0
    for user_id, events in calls:
        recorded = state.events.record(user_id, events)
        accepted += recorded.accepted
        duplicates += recorded.duplicates
    return Recorded(accepted, duplicates)
