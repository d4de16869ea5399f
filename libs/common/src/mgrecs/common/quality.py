"""The data-quality report of a batch of order lines: what is wrong, how much, and whether a
model may be fed from it. `quality_checks` makes it; it is stored per sync, backfill and
export, and shown by the api and the CLI.
"""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


class CheckResult(BaseModel):
    """One check: how many lines it flagged, their share of the batch, and a few of them."""

    count: int = 0
    rate: float = 0.0
    examples: list[dict[str, Any]] = Field(default_factory=list)


class Coverage(BaseModel):
    """Who and what the batch leaves thin: informative, not counted as bad records."""

    products_without_purchases: int = 0
    products_without_purchases_examples: list[str] = Field(default_factory=list)
    customers_with_one_order: int = 0
    customers_with_one_order_examples: list[str] = Field(default_factory=list)
    customers: int = 0
    products_bought: int = 0


class QualityReport(BaseModel):
    """The report stored per sync and per export (JSON in `data_quality_reports.report`)."""

    source: str
    kind: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    lines: int
    bad_lines: int
    """Lines flagged by at least one check (a line counts once)."""
    bad_rate: float
    max_bad_rate: float
    passed: bool
    reason: str
    checks: dict[str, CheckResult]
    coverage: Coverage
