"""`mgrecs cost`: what each mode consumed and its AWS bill per day and month (docs/cost.md).
The same report as `GET /v1/reports/cost`, read from PostgreSQL."""

import json
import math
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mgrecs.cli.models import with_pool

if TYPE_CHECKING:
    from mgrecs.store.cost_report import CostReport, Period

console = Console()


def cost(
    start: Annotated[
        datetime | None, typer.Option(help="first UTC day (default: end - 30 days)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(help="last UTC day, included (default: today)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Per day and month and per mode: the counts, the estimated AWS bill (self-hosted mode:
    what AWS would have cost) and the machine hours, at the MGRECS_PRICE_* table."""
    from mgrecs.common.prices import prices_from
    from mgrecs.common.settings import get_settings
    from mgrecs.store.cost_report import load_cost_report

    settings = get_settings()
    now = datetime.now(UTC)
    last: date = end.date() if end is not None else now.date()
    first: date = start.date() if start is not None else last - timedelta(days=30)
    if first > last:
        raise typer.BadParameter("--start must not be after --end")
    prices = prices_from(settings)
    report = with_pool(
        lambda pool: load_cost_report(pool, prices, settings.daily_budget, first, last, now)
    )
    if as_json:
        typer.echo(json.dumps(_finite(asdict(report)), default=str))
        return
    _print(report)


def _finite(value: Any) -> Any:
    """Infinite tier limits as null (JSON has no infinity)."""
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _table(title: str, periods: "list[Period]") -> Table:
    table = Table(title=title)
    for column in ("period", "mode", "events", "calls", "AWS USD", "machine h", "machine USD"):
        table.add_column(column)
    for p in periods:
        calls = p.counts.get("get_recommendations", 0) + p.counts.get("get_personalized_ranking", 0)
        table.add_row(
            p.period,
            p.mode,
            f"{p.counts.get('events', 0):.0f}",
            f"{calls:.0f}",
            f"{p.aws_usd:.2f}" + (" over budget" if p.over_budget else ""),
            f"{p.machine_hours:g}",
            f"{p.machine_usd:.2f}",
        )
    return table


def _print(report: "CostReport") -> None:
    console.print(f"prices as of {report.prices.taken}; daily budget {report.daily_budget:g} USD")
    console.print(_table("days", report.days))
    console.print(_table("months", report.months))
