"""Idempotent writes of feedback events: one row per event id, a replay changes nothing."""

from collections.abc import Sequence

import asyncpg

from mgrecs.common.feedback import FeedbackEvent

INSERT_FEEDBACK = """
INSERT INTO feedback_events (event_id, customer_id, product_id, kind, occurred_at,
                             model_version, source, experiment_id, arm, revenue)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::numeric[])
ON CONFLICT (event_id) DO NOTHING
"""
"""One statement per batch (columns as arrays); an id seen before, in this batch or an
earlier one, is skipped."""


async def write_feedback(pool: asyncpg.Pool, events: Sequence[FeedbackEvent]) -> None:
    """Insert the events not stored yet."""
    columns: list[list[object]] = [[] for _ in range(10)]
    for event in events:
        row = (
            event.event_id,
            event.customer_id,
            event.product_id,
            event.kind,
            event.occurred_at,
            event.model_version,
            event.source,
            event.experiment_id,
            event.arm,
            event.revenue,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await pool.execute(INSERT_FEEDBACK, *columns)
