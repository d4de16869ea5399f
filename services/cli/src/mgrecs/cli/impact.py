"""`mgrecs impact`: what recommendations earned in a period, per model version or any other
dimension, against the baseline (docs/concepts.md, Impact). The same report as
`GET /v1/reports/impact`, read from PostgreSQL."""

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from mgrecs.cli.models import with_pool
from mgrecs.store.impact import DIMENSIONS

if TYPE_CHECKING:
    from mgrecs.store.impact import Dimension
    from mgrecs.store.impact_report import ImpactReport

console = Console()


def _dimensions(value: str) -> "list[Dimension]":
    from mgrecs.store.impact import parse_dimensions

    try:
        return parse_dimensions(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def impact(
    group_by: Annotated[
        str, typer.Option(help=f"one or two of {', '.join(DIMENSIONS)}, comma-separated")
    ] = "model_version",
    start: Annotated[
        datetime | None, typer.Option(help="first day (UTC; default: end - 7 days)")
    ] = None,
    end: Annotated[datetime | None, typer.Option(help="end of the period (default: now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Attributed revenue, orders and items per group, the baseline, the uplift of being
    shown a product (95 % interval) and experiment arms against the holdout."""
    from mgrecs.common.settings import get_settings
    from mgrecs.store.impact_report import impact_report

    dimensions = _dimensions(group_by)
    settings = get_settings()
    until = _utc(end) or datetime.now(UTC)
    since = _utc(start) or until - timedelta(days=7)
    if since >= until:
        raise typer.BadParameter("--start must be before --end")
    report = with_pool(
        lambda pool: impact_report(
            pool,
            since,
            until,
            settings.attribution_window_days,
            dimensions,
            settings.impact_holdout_arm,
        )
    )
    if as_json:
        typer.echo(json.dumps(asdict(report), default=str))
        return
    _print(report)


def _print(report: "ImpactReport") -> None:
    table = Table(
        title=f"impact {report.start:%Y-%m-%d %H:%M} - {report.end:%Y-%m-%d %H:%M} "
        f"(window {report.window_days:g} days)"
    )
    for column in (*report.group_by, "attributed revenue", "orders", "items", "baseline revenue"):
        table.add_column(column)
    for group in report.groups:
        table.add_row(
            *(str(group.key[name]) for name in report.group_by),
            f"{group.attributed.revenue:.2f}",
            str(group.attributed.orders),
            str(group.attributed.items),
            f"{group.baseline.revenue:.2f}",
        )
    console.print(table)
    total = report.total
    console.print(
        f"total: attributed {total.attributed.revenue:.2f}, baseline {total.baseline.revenue:.2f}"
    )
    if report.uplift is not None:
        d = report.uplift.difference
        console.print(
            f"uplift (shown vs other products' purchase rate): {d.value:+.4f} "
            f"[{d.low:+.4f}, {d.high:+.4f}] over {d.n} customers"
        )
    for arm in report.arms:
        versus = arm.versus_holdout
        against = (
            ""
            if versus is None
            else f", vs holdout {versus.value:+.2f} [{versus.low:+.2f}, {versus.high:+.2f}]"
        )
        console.print(f"arm {arm.experiment_id}/{arm.arm}: {arm.customers} customers{against}")
