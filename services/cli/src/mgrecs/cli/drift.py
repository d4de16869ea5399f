"""`mgrecs drift`: check now whether recent purchases drifted from the active model's."""

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console()


def drift(
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Check now whether recent purchases drifted from the active model's (stored;
    docs/concepts.md, Model health (drift))."""
    from mgrecs.batch.public import check_drift
    from mgrecs.common.db import create_pool
    from mgrecs.common.settings import get_settings
    from mgrecs.store.model_versions import NoActiveModel

    settings = get_settings()

    async def run() -> dict[str, Any]:
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            report_id, report = await check_drift(pool, settings)
        finally:
            await pool.close()
        return {"id": report_id, **report.as_json()}

    try:
        report = asyncio.run(run())
    except NoActiveModel as exc:
        console.print(f"[red]no active model to check: {exc}[/red]")
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(json.dumps(report))
        return
    verdict = "[red]DRIFTED[/red]" if report["drifted"] else "[green]no drift[/green]"
    if not report["judged"]:
        verdict += f" ({report['recent_lines']} recent lines: too few to judge)"
    console.print(f"model {report['model_version']}: {verdict} (report {report['id']})")
    for flag in report["flags"]:
        console.print(f"  {flag}", highlight=False)
