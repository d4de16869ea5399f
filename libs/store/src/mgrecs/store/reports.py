"""Reports: data-quality reports (`data_quality_reports`, one per sync, backfill and export)
and drift reports (`drift_reports`, one per check)."""

from typing import Any

import asyncpg

from mgrecs.common.quality import QualityReport

INSERT_QUALITY = """
INSERT INTO data_quality_reports (source, kind, created_at, report, passed)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""
LATEST_QUALITY = """
SELECT id, report FROM data_quality_reports
WHERE $1::text IS NULL OR source = $1
ORDER BY id DESC LIMIT $2
"""

INSERT_DRIFT = """
INSERT INTO drift_reports (model_version, drifted, report) VALUES ($1, $2, $3)
RETURNING id, checked_at
"""
LATEST_DRIFT = "SELECT id, checked_at, report FROM drift_reports ORDER BY id DESC LIMIT $1"
LATEST_DRIFT_FLAGS = """
SELECT id, checked_at, model_version, drifted, report -> 'flags' AS flags
FROM drift_reports
ORDER BY id DESC
LIMIT 1
"""


async def save_report(pool: asyncpg.Pool, report: QualityReport) -> int:
    """Store one data-quality report; returns its id."""
    document = report.model_dump(mode="json")
    report_id: int = await pool.fetchval(
        INSERT_QUALITY, report.source, report.kind, report.created_at, document, report.passed
    )
    return report_id


async def latest_reports(
    pool: asyncpg.Pool, limit: int = 20, source: str | None = None
) -> list[tuple[int, QualityReport]]:
    """The newest `limit` data-quality reports (of one source when given), newest first,
    with their ids."""
    rows: list[Any] = await pool.fetch(LATEST_QUALITY, source, limit)
    return [(row["id"], QualityReport.model_validate(row["report"])) for row in rows]


async def first_report(pool: asyncpg.Pool, source: str) -> QualityReport | None:
    """The oldest data-quality report of `source` (its first sync), if any."""
    report = await pool.fetchval(
        "SELECT report FROM data_quality_reports WHERE source = $1 ORDER BY id LIMIT 1", source
    )
    return None if report is None else QualityReport.model_validate(report)


async def save_drift(
    pool: asyncpg.Pool, model_version: str, drifted: bool, report: dict[str, Any]
) -> asyncpg.Record:
    """Store one drift report; returns its id and checked_at."""
    row: asyncpg.Record = await pool.fetchrow(INSERT_DRIFT, model_version, drifted, report)
    return row


async def latest_drift(pool: asyncpg.Pool, limit: int = 10) -> list[asyncpg.Record]:
    """The newest drift reports, newest first (id, checked_at, report)."""
    return list(await pool.fetch(LATEST_DRIFT, limit))


async def latest_drift_flags(pool: asyncpg.Pool) -> asyncpg.Record | None:
    """The newest drift report's id, time, version, verdict and flags (the status page)."""
    row: asyncpg.Record | None = await pool.fetchrow(LATEST_DRIFT_FLAGS)
    return row
