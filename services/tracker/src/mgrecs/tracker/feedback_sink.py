"""The feedback sink: events the frontend reported (topic `feedback`) into `feedback_events`.

Same contract as the orders' database sink: the batch is written before its offsets are
committed, a replay is a no-op (event ids are the key), and a message that is not a valid
`FeedbackEvent` goes to `feedback.dlq` with the reason.
"""

from mgrecs.common import topics
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.tracker.db_sink import REJECTED_BY_DB, PostgresSink
from mgrecs.tracker.feedback_store import write_feedback
from mgrecs.tracker.metrics import WRITTEN
from mgrecs.tracker.parsing import parse_message
from mgrecs.tracker.worker import Record


class FeedbackSink(PostgresSink):
    """Consumer group `mgrecs-tracker-feedback`: feedback into PostgreSQL, poison to the DLQ."""

    sink = "feedback"
    group = "mgrecs-tracker-feedback"
    topic = topics.FEEDBACK
    dlq = topics.FEEDBACK_DLQ

    async def handle(self, records: list[Record]) -> None:
        valid: list[tuple[Record, FeedbackEvent]] = []
        for record in records:
            parsed = parse_message(record, FeedbackEvent)
            if isinstance(parsed, FeedbackEvent):
                valid.append((record, parsed))
            else:
                await self._dead_letter(record, parsed)
        if valid:
            await self.durably(lambda: self._write(valid))
            WRITTEN.labels(self.sink).inc(len(valid))

    async def _write(self, valid: list[tuple[Record, FeedbackEvent]]) -> None:
        """One statement for the batch; if the database rejects it, find which events."""
        try:
            await write_feedback(self._pool, [event for _, event in valid])
        except REJECTED_BY_DB:
            for record, event in valid:
                try:
                    await write_feedback(self._pool, [event])
                except REJECTED_BY_DB as exc:
                    await self._dead_letter(record, f"rejected by the database: {exc}")
