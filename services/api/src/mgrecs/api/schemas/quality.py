"""The answers of `routes.quality`: stored data-quality reports."""

from datetime import datetime

from pydantic import BaseModel

from mgrecs.common.quality import QualityReport


class StoredQualityReport(BaseModel):
    """A data-quality report of one sync, backfill or export, as stored."""

    id: int
    source: str
    kind: str
    created_at: datetime
    passed: bool
    report: QualityReport

    @classmethod
    def of(cls, report_id: int, report: QualityReport) -> "StoredQualityReport":
        return cls(
            id=report_id,
            source=report.source,
            kind=report.kind,
            created_at=report.created_at,
            passed=report.passed,
            report=report,
        )


class QualityReports(BaseModel):
    """The newest data-quality reports, newest first."""

    items: list[StoredQualityReport]
