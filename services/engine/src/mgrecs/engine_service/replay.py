"""A restarted engine still knows what PutEvents had told it.

PutEvents history lives in the engine's memory (`events`), and the tracker has committed
what it sent: after a restart nobody would send it again. The same purchases are in
PostgreSQL, so on start the engine reads back the order lines that reached the database
after the served model was trained (the last `active_days` days when no model serves yet)
under the tracker's event ids (`<order_id>#<line_no>`, see mgrecs.tracker.events) and order
versions: a line the tracker sends again later still counts once. Orders corrected,
cancelled or returned since then are read back too, in the version stored: only the lines
that count.
"""

from datetime import UTC, datetime, timedelta

import asyncpg

from mgrecs.common.logging import get_logger
from mgrecs.common.schemas import version_token
from mgrecs.engine_service.events import Line
from mgrecs.engine_service.state import EngineState
from mgrecs.store import model_versions

log = get_logger(__name__)

# The customer's region as the tracker reports it: the order's, else the customer's. An order
# without lines (cancelled or returned) comes as one row without a line, so its version is
# known and an older version sent later is ignored.
LINES_SINCE = """
SELECT o.customer_id, o.order_id || '#' || oi.line_no, oi.product_id,
       COALESCE(o.region, c.region), o.order_id,
       COALESCE(o.updated_at, o.ordered_at), o.content_hash
FROM orders o
LEFT JOIN order_items oi ON oi.order_id = o.order_id
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.ingested_at >= $1 OR o.revised_at >= $1
ORDER BY o.ingested_at, o.order_id, oi.line_no
"""

FETCH_ROWS = 10_000


async def replay_since_training(state: EngineState, pool: asyncpg.Pool) -> int:
    """Fold in the order lines since the served model's training; how many were new."""
    since = await _since(state, pool)
    replayed = 0
    async with pool.acquire() as conn, conn.transaction():
        cursor = await conn.cursor(LINES_SINCE, since)
        while rows := await cursor.fetch(FETCH_ROWS):
            replayed += state.events.replay(
                Line(*row[:5], version_token(row[5], row[6])) for row in rows
            )
    log.info("events_replayed", lines=replayed, since=since.isoformat())
    return replayed


async def _since(state: EngineState, pool: asyncpg.Pool) -> datetime:
    version = state.registry.version
    trained_at: datetime | None = None
    if version is not None:
        trained_at = await model_versions.trained_at(pool, version)
    return trained_at or datetime.now(UTC) - timedelta(days=state.settings.active_days)
