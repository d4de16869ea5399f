"""`mgrecs quality`: the latest data-quality reports, as a table or JSON."""

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from mgrecs.common.quality import QualityReport

console = Console()


async def _load(limit: int, source: str | None) -> "list[tuple[int, QualityReport]]":
    from mgrecs.common.db import create_pool
    from mgrecs.common.settings import get_settings
    from mgrecs.store.reports import latest_reports

    pool = await create_pool(get_settings().database_url, max_size=1)
    try:
        return await latest_reports(pool, limit, source)
    finally:
        await pool.close()


def quality(
    source: Annotated[str | None, typer.Option(help="only reports of this source")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print the full reports as JSON")] = False,
) -> None:
    """Print the latest data-quality reports (backfills, syncs, retrain exports)."""
    reports = asyncio.run(_load(limit, source))
    if as_json:
        documents = [
            {"id": report_id, "report": report.model_dump(mode="json")}
            for report_id, report in reports
        ]
        typer.echo(json.dumps(documents, indent=2))
        return
    if not reports:
        console.print("no data-quality report yet")
        return
    table = Table("id", "when", "source", "kind", "lines", "bad", "verdict", "reason")
    for report_id, report in reports:
        table.add_row(
            str(report_id),
            f"{report.created_at:%Y-%m-%d %H:%M}",
            report.source,
            report.kind,
            str(report.lines),
            f"{report.bad_lines} ({report.bad_rate:.2%})",
            "[green]passed[/green]" if report.passed else "[red]FAILED[/red]",
            report.reason,
        )
    console.print(table)
