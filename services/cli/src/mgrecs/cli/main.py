"""`mgrecs`: the operator's command line (migrations, topics, ticks, backfill, demo).

Every `mgrecs` command, `--help` included, imports this module and the command modules: at
their top they import only typer, rich and the standard library (and the light modules a
help text names), and a command imports what it runs on (alembic, the broker's client, the
engine, the batch and ingest services) when it runs, so a command starts in a fraction of a
second, not the five seconds those imports take (tests/cli/test_startup.py).
"""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from rich.console import Console

from mgrecs.cli import aws, cache, models, rules
from mgrecs.cli.cost import cost
from mgrecs.cli.drift import drift
from mgrecs.cli.evaluate import evaluate
from mgrecs.cli.experiment import experiment
from mgrecs.cli.impact import impact
from mgrecs.cli.jobs import jobs
from mgrecs.cli.quality import quality
from mgrecs.common.ticks import TickKind

if TYPE_CHECKING:
    from mgrecs.common.quality import QualityReport
    from mgrecs.ingest.public import FileFormat

app = typer.Typer(
    help="Operate mgrecs: schema, topics, ticks, backfills and the demo.", no_args_is_help=True
)
console = Console()


@app.callback()
def _log_to_stderr() -> None:
    """Logs go to stderr (JSON or console, as MGRECS_LOG_JSON says), so what a command
    prints (tables, --json) stays clean."""
    from mgrecs.common.logging import configure_logging
    from mgrecs.common.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


TICK_KINDS: tuple[str, ...] = get_args(TickKind)
app.command()(evaluate)
app.command()(quality)
app.command()(jobs)
app.command()(drift)
app.command()(experiment)
app.command()(impact)
app.command()(cost)
app.add_typer(cache.app, name="cache")
app.add_typer(rules.app, name="rules")
app.add_typer(aws.app, name="aws")
for command in (models.models, models.promote, models.rollback):
    app.command()(command)


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply database migrations up to REVISION (default: the newest)."""
    from mgrecs.common.settings import get_settings
    from mgrecs.store.schema import migrate as run_migrations

    settings = get_settings()
    run_migrations(settings.database_url, revision)
    console.print(f"[green]schema at {revision}[/green]")


@app.command("create-topics")
def create_topics() -> None:
    """Create the platform's Kafka topics if missing."""
    from mgrecs.common import topics
    from mgrecs.common.kafka import ensure_topics
    from mgrecs.common.settings import get_settings

    settings = get_settings()
    asyncio.run(ensure_topics(settings))
    console.print(
        "[green]topics ready:[/green] "
        + ", ".join(topics.topic(name, settings) for name in topics.ALL_TOPICS)
    )


@app.command()
def tick(kind: Annotated[str, typer.Argument(help=" | ".join(TICK_KINDS))]) -> None:
    """Ask the batch service to run a job now (publishes to `schedule-ticks`)."""
    if kind not in TICK_KINDS:
        raise typer.BadParameter(f"KIND must be one of {', '.join(TICK_KINDS)}")
    from mgrecs.common.channels import publish_tick
    from mgrecs.common.settings import get_settings

    sent = asyncio.run(publish_tick(get_settings(), kind))  # type: ignore[arg-type]
    console.print(f"published {sent.kind} tick {sent.tick_id}")


FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", help="csv or jsonl; by default JSON lines for .jsonl/.ndjson/.json, else CSV"
    ),
]


def _file_format(file: Path, file_format: str | None) -> "FileFormat":
    """The format asked for, else the one the file's name says; exit 2 on any other."""
    from mgrecs.ingest.public import detect_format

    given = file_format or detect_format(file.name)
    if given not in ("csv", "jsonl"):
        console.print(f"[red]--format must be csv or jsonl, not {file_format!r}[/red]")
        raise typer.Exit(code=2)
    return "csv" if given == "csv" else "jsonl"


@app.command()
def backfill(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    file_format: FormatOption = None,
) -> None:
    """Publish the orders of a CSV or JSON-lines file to `orders` (constant memory)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mgrecs.common.settings import get_settings
    from mgrecs.ingest.public import backfill_file

    chosen = _file_format(file, file_format)

    settings = get_settings()
    with file.open("rb") as handle:
        total = max(sum(1 for _ in handle) - (chosen == "csv"), 0)
    with Progress(
        TextColumn("backfill"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("lines", total=total)
        try:
            summary = asyncio.run(
                backfill_file(
                    file,
                    settings,
                    on_progress=lambda done: progress.update(task, completed=done),
                    file_format=chosen,
                )
            )
        except (ValueError, UnicodeDecodeError) as exc:
            console.print(f"[red]{file}: {exc}[/red]")
            raise typer.Exit(code=2) from exc
    console.print(
        f"lines read {summary.lines_read}, orders published {summary.orders_published} "
        f"({summary.order_lines} order lines), "
        f"orders rejected {summary.orders_rejected} ({summary.lines_rejected} lines)"
    )
    for error in summary.errors:
        console.print(f"  rejected: {error}")
    report = summary.quality
    if report is not None:
        _print_verdict(report, summary.quality_report_id)
    if summary.lines_rejected or (report is not None and not report.passed):
        raise typer.Exit(code=1)


@app.command("backfill-products")
def backfill_products(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    file_format: FormatOption = None,
) -> None:
    """Publish the catalogue records of a CSV or JSON-lines file to `products`."""
    from mgrecs.common.settings import get_settings
    from mgrecs.ingest.public import backfill_catalogue

    chosen = _file_format(file, file_format)
    try:
        summary = asyncio.run(backfill_catalogue(file, get_settings(), file_format=chosen))
    except (ValueError, UnicodeDecodeError) as exc:
        console.print(f"[red]{file}: {exc}[/red]")
        raise typer.Exit(code=2) from exc
    console.print(
        f"lines read {summary.lines_read}, products published {summary.published}, "
        f"rejected {summary.rejected} (to products.dlq)"
    )
    for error in summary.errors:
        console.print(f"  rejected: {error}", highlight=False)
    if summary.rejected:
        raise typer.Exit(code=1)


def _print_verdict(report: "QualityReport", report_id: int | None) -> None:
    verdict = "[green]passed[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(f"data quality {verdict} (report {report_id}, `mgrecs quality`): {report.reason}")


@app.command()
def sync(
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="keep polling every MGRECS_CONNECTOR_POLL_SECONDS, as `mgrecs-connector` does",
        ),
    ] = False,
) -> None:
    """Pull new and updated orders from the company's order API onto `orders` (and its
    catalogue onto `products`, when the mapping file has a `products` section)."""
    from mgrecs.common.settings import get_settings
    from mgrecs.ingest.public import (
        ApiUnavailableError,
        BrokerUnavailableError,
        MappingError,
        require_connector_secrets,
        run_connector,
        run_sync,
    )

    settings = get_settings()
    require_connector_secrets(settings, "mgrecs sync")
    try:
        if follow:  # the service itself: the puller lock, probes and metrics, SIGTERM
            asyncio.run(run_connector(settings))
            return
        report = asyncio.run(run_sync(settings))
    except MappingError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc
    except (ApiUnavailableError, BrokerUnavailableError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from exc
    console.print(
        f"synced {report.pages} pages: {report.published} orders published, "
        f"{report.dead_lettered} dead-lettered, {report.skipped} skipped; "
        f"watermark {report.watermark.updated_at.isoformat() if report.watermark else 'none'}"
    )
    for error in report.errors:
        console.print(f"  dead-lettered: {error}", highlight=False)
    if report.products is not None:
        catalogue = report.products
        console.print(
            f"catalogue: {catalogue.pages} pages, {catalogue.published} products published, "
            f"{catalogue.dead_lettered} dead-lettered, {catalogue.skipped} skipped"
        )
        for error in catalogue.errors:
            console.print(f"  dead-lettered: {error}", highlight=False)
    quality = report.quality
    if quality is not None:
        _print_verdict(quality, report.quality_report_id)
        if not quality.passed:
            raise typer.Exit(code=1)


@app.command("sample-data")
def sample_data(
    out: Path,
    seed: int = 7,
    customers: int = 500,
    products: int = 200,
    orders: int = 4000,
) -> None:
    """Write a deterministic sample data set as a flat order-lines CSV."""
    from mgrecs.ingest.public import generate

    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    data = generate(seed=seed, customers=customers, products=products, orders=orders, anchor=anchor)
    data.write_csv(out)
    console.print(f"wrote {len(data.orders)} orders to {out}")


@app.command()
def asyncapi(out: Path = Path("docs/asyncapi.json")) -> None:
    """Write the AsyncAPI document of the topics (the contract for upstream publishers)."""
    from mgrecs.ingest.public import write_asyncapi

    write_asyncapi(out)
    console.print(f"wrote {out}")


@app.command()
def demo(
    customers: int = 500,
    products: int = 200,
    orders: int = 4000,
    seed: int = 7,
    run_dir: Annotated[
        Path, typer.Option(help="database, logs and models of the run (wiped at the start)")
    ] = Path(".run"),
) -> None:
    """Run the whole pipeline on the embedded stack with sample data; Ctrl-C stops it."""
    from mgrecs.cli.demo import DemoOptions, run_demo

    options = DemoOptions(customers, products, orders, seed, wait=True, run_dir=run_dir)
    raise typer.Exit(run_demo(options))


@app.command()
def smoke(customers: int = 300, products: int = 120, orders: int = 2000, seed: int = 7) -> None:
    """Like `demo`, but check the region endpoint and exit (0 only when it is right)."""
    from mgrecs.cli.demo import DemoOptions, run_demo

    raise typer.Exit(run_demo(DemoOptions(customers, products, orders, seed, wait=False)))


if __name__ == "__main__":
    app()
