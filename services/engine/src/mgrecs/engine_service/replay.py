"""A restarted engine still knows what PutEvents had told it.

PutEvents history lives in the engine's memory (`events`), and the tracker has committed
what it sent: after a restart nobody would send it again. The same purchases are in
PostgreSQL, so on start the engine reads back the order lines that reached the database
after the served model was trained (the last `active_days` days when no model serves yet)
under the tracker's event ids (`mgrecs.store.orders.line_event_id`) and order
versions: a line the tracker sends again later still counts once. Orders corrected,
cancelled or returned since then are read back too, in the version stored: only the lines
that count.
"""

from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import asyncpg

from mgrecs.common.logging import get_logger
from mgrecs.common.schemas import version_token
from mgrecs.engine_service.events import Line
from mgrecs.engine_service.state import EngineState
from mgrecs.store import model_versions
from mgrecs.store.order_reads import lines_since

log = get_logger(__name__)

FETCH_ROWS = 10_000


async def replay_since_training(state: EngineState, pool: asyncpg.Pool) -> int:
    """Fold in the order lines since the served model's training; how many were new."""
    since = await _since(state, pool)
    replayed = 0
    async with aclosing(lines_since(pool, since, FETCH_ROWS)) as batches:
        async for rows in batches:
            replayed += state.events.replay(
                Line(row[0], row[1], row[2], row[3], row[4], version_token(row[5], row[6]))
                for row in rows
            )
    log.info("events_replayed", lines=replayed, since=since.isoformat())
    return replayed


async def _since(state: EngineState, pool: asyncpg.Pool) -> datetime:
    version = state.registry.version
    trained_at: datetime | None = None
    if version is not None:
        trained_at = await model_versions.trained_at(pool, version)
    return trained_at or datetime.now(UTC) - timedelta(days=state.settings.active_days)
