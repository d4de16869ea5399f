"""Where data-quality reports are kept: table `data_quality_reports`, newest first."""

from typing import Any

import asyncpg

from mgrecs.common.quality import QualityReport

INSERT = """
INSERT INTO data_quality_reports (source, kind, created_at, report, passed)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""
LATEST = """
SELECT id, report FROM data_quality_reports
WHERE $1::text IS NULL OR source = $1
ORDER BY id DESC LIMIT $2
"""


async def save_report(pool: asyncpg.Pool, report: QualityReport) -> int:
    """Store one report; returns its id."""
    document = report.model_dump(mode="json")
    report_id: int = await pool.fetchval(
        INSERT, report.source, report.kind, report.created_at, document, report.passed
    )
    return report_id


async def latest_reports(
    pool: asyncpg.Pool, limit: int = 20, source: str | None = None
) -> list[tuple[int, QualityReport]]:
    """The newest `limit` reports (of one source when given), newest first, with their ids."""
    rows: list[Any] = await pool.fetch(LATEST, source, limit)
    return [(row["id"], QualityReport.model_validate(row["report"])) for row in rows]
