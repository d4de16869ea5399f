"""Taking in PutEvents events: on the shared topic first, then in this replica's history.

The one path every PutEvents request's events take (one call per user, or many users' calls
at once): published to `engine-events` before the request is answered (mgrecs.engine_service
.feed), so every replica gets them and a restarted one reads them back; recorded here at
once, so the caller's next answer reflects them whatever the follower's lag. A broker that
does not take them makes the request fail with 503 `ServiceUnavailable`: the tracker waits
and sends them again, and their event ids make the second copy count once.
"""

import time
from collections.abc import Sequence

from mgrecs.engine_service.errors import AwsError
from mgrecs.engine_service.events import Line, Recorded, collector_paused
from mgrecs.engine_service.feed import Unavailable
from mgrecs.engine_service.state import EngineState


async def accept(state: EngineState, lines: Sequence[Line]) -> Recorded:
    """Publish then record `lines` (the events of one or many PutEvents calls, as the
    history keeps them: mgrecs.engine_service.protocol.lines_of, .bulk.read_bulk), in as
    few messages as `feed.MESSAGE_EVENTS` allows; AwsError 503 when the broker does not
    take them (nothing is recorded then)."""
    at = int(time.time() * 1000)
    try:
        await state.feed.publish(lines, at)
    except Unavailable as exc:
        raise AwsError(503, "ServiceUnavailable", f"events not taken, send again: {exc}") from exc
    with collector_paused():
        return state.events.record(lines, at)
