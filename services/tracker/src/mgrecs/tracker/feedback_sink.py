"""The feedback sink: events the frontend reported (topic `feedback`) into `feedback_events`.

Same contract as the orders' database sink: the batch is written before its offsets are
committed, a replay is a no-op (event ids are the key), and a message that is not a valid
`FeedbackEvent` goes to `feedback.dlq` with the reason.
"""

from mgrecs.common import channels
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.store.feedback import write_feedback
from mgrecs.tracker.db_sink import PostgresSink


class FeedbackSink(PostgresSink[FeedbackEvent]):
    """Consumer group `mgrecs-tracker-feedback`: feedback into PostgreSQL, poison to
    `feedback.dlq`."""

    sink = "feedback"
    channel = channels.TRACKER_FEEDBACK
    group = channel.group
    message = FeedbackEvent

    async def write(self, messages: list[FeedbackEvent]) -> None:
        await write_feedback(self._pool, messages)
