"""Data-quality reports: what the latest syncs, backfills and exports found wrong."""

from typing import Annotated

from fastapi import APIRouter, Query

from mgrecs.api.deps import RepositoryDep
from mgrecs.api.schemas.quality import QualityReports, StoredQualityReport

router = APIRouter(prefix="/v1/quality", tags=["quality"])


@router.get(
    "/reports",
    response_model=QualityReports,
    summary="The newest data-quality reports (counts, rates, examples, verdict)",
)
async def quality_reports(
    repository: RepositoryDep,
    limit: Annotated[int, Query(ge=1, le=100, description="how many reports (1-100)")] = 20,
) -> QualityReports:
    """Newest first; a report that did not pass says why in `report.reason`."""
    stored = await repository.quality_reports(limit)
    return QualityReports(
        items=[StoredQualityReport.of(report_id, report) for report_id, report in stored]
    )
