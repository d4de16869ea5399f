"""`mgrecs evaluate ORDERS.csv`: every recipe and the popularity baselines on a time split.

With `--objective margin --catalogue FILE` it adds the trade-off of margin against relevance
(the served recipe's lists re-ordered at weights 0, 0.1, ..., 1: NDCG@k and the mean margin
of the top k), to choose `MGRECS_MARGIN_WEIGHT` knowingly.

Output goes to stdout (a table, or JSON only with --json); progress, warnings and errors go
to stderr so the JSON stays machine-readable. Bad input and too little data exit with
code 2 and a message, never a traceback.
"""

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from mgrecs.engine.evaluation import EvaluationReport
    from mgrecs.engine.evaluation.cold_start import ColdStartReport
    from mgrecs.engine.evaluation.margin_curve import MarginCurve
    from mgrecs.engine.orders_file import ReadSummary

DEFAULT_NEW_ITEMS_SHARE = 0.1
"""The cold-start report's share of new-product slots: `new_items_share`'s default."""
DEFAULT_TEST_DAYS = 14
"""Test period when neither --test-from nor --test-days is given: the last two weeks."""
BAD_INPUT = 2


class Objective(StrEnum):
    """What `mgrecs evaluate` weighs: relevance alone, or also margin against it."""

    relevance = "relevance"
    margin = "margin"


def _fail(err: Console, message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=BAD_INPUT)


def _parse_date(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _params(params: dict[str, Any]) -> str:
    from mgrecs.engine.recipes.blend import describe

    if "components" in params:
        return describe(params["components"], params.get("segments"))
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "-"


def _lift(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:+.1f}%"


def _table(report: "EvaluationReport") -> Table:
    from mgrecs.engine.evaluation import REPEAT_BASELINE, baselines

    k = report.k
    best = report.best.recipe
    repeat = report.split.repeat
    table = Table(title=f"Top-{k} on the test period ({report.split.users.size} customers)")
    table.add_column("recipe", no_wrap=True)
    table.add_column("params", overflow="fold", max_width=28)
    metrics = (f"P@{k}", f"R@{k}", f"NDCG@{k}", "MRR", "coverage", "users", "train s", "infer s")
    for header in metrics:
        table.add_column(header, justify="right", no_wrap=True)
    if repeat:
        table.add_column(f"vs {REPEAT_BASELINE}", justify="right", no_wrap=True)
    for result in report.results:
        m = result.metrics
        lift: list[str] = []
        if repeat:
            personal = result.recipe not in baselines(repeat)
            lift = [_lift(report.lift_over(REPEAT_BASELINE, result.recipe)) if personal else ""]
        table.add_row(
            result.recipe + (" *" if result.recipe == best else ""),
            _params(result.params) + (" (budget hit)" if result.budget_exhausted else ""),
            f"{m.precision:.4f}",
            f"{m.recall:.4f}",
            f"{m.ndcg:.4f}",
            f"{m.mrr:.4f}",
            f"{m.coverage:.3f}",
            str(m.users),
            f"{result.train_seconds:.2f}",
            f"{result.inference_seconds:.2f}",
            *lift,
            style="bold" if result.recipe == best else None,
        )
    return table


def _verdict(report: "EvaluationReport") -> str:
    from mgrecs.engine.evaluation import REPEAT_BASELINE

    best, k = report.best, report.k
    parts = []
    for baseline in (report.baseline, "popularity-count", REPEAT_BASELINE):
        if not any(r.recipe == baseline for r in report.results):
            continue
        base = report.result(baseline).metrics.ndcg
        lift = report.lift_over(baseline)
        parts.append(
            f"{lift:+.1f} % vs {baseline} ({base:.4f})"
            if lift is not None
            else f"{baseline} scored 0"
        )
    return f"best: {best.recipe} with NDCG@{k} {best.metrics.ndcg:.4f}, " + ", ".join(parts)


def _cold_start_table(cold: "ColdStartReport") -> Table:
    k = cold.k
    table = Table(
        title=f"Cold start: {cold.new_products} products first sold in the test period, "
        f"bought by {cold.customers} known customers ({cold.recipe}'s lists)"
    )
    table.add_column("served lists", no_wrap=True)
    table.add_column(f"hit rate@{k}", justify="right", no_wrap=True)
    table.add_column(f"NDCG@{k}", justify="right", no_wrap=True)
    for label, figures in (
        ("without the new-items slot", cold.without_slot),
        (f"with the slot (share {cold.share:g})", cold.with_slot),
    ):
        table.add_row(label, f"{figures.hit_rate:.4f}", f"{figures.ndcg:.4f}")
    return table


def _stored_margins() -> dict[str, float]:
    """The catalogue's margins in the database (MGRECS_DATABASE_URL)."""
    from mgrecs.cli.models import with_pool
    from mgrecs.store.products import margins

    return with_pool(margins)


def _margin_table(curve: "MarginCurve") -> Table:
    k = curve.k
    table = Table(
        title=f"Margin against relevance: {curve.recipe}'s lists re-ordered from its best "
        f"{curve.candidates} ({curve.products_with_margin} products with a margin; "
        "MGRECS_MARGIN_WEIGHT)"
    )
    table.add_column("weight", justify="right", no_wrap=True)
    table.add_column(f"NDCG@{k}", justify="right", no_wrap=True)
    table.add_column("vs 0", justify="right", no_wrap=True)
    table.add_column(f"mean margin top-{k}", justify="right", no_wrap=True)
    table.add_column("vs 0", justify="right", no_wrap=True)
    base = curve.points[0]
    for point in curve.points:
        ndcg_lift = (point.ndcg / base.ndcg - 1) * 100 if base.ndcg else None
        margin_lift = (
            (point.mean_margin / base.mean_margin - 1) * 100 if base.mean_margin > 0 else None
        )
        table.add_row(
            f"{point.weight:g}",
            f"{point.ndcg:.4f}",
            _lift(ndcg_lift),
            f"{point.mean_margin:.2f}",
            _lift(margin_lift),
        )
    return table


def _read_warnings(err: Console, summary: "ReadSummary") -> None:
    if summary.lines_skipped:
        err.print(
            f"[yellow]skipped {summary.lines_skipped} of {summary.lines_read} lines[/yellow] "
            "(--strict to fail instead):",
            highlight=False,
        )
        for example in summary.examples:
            err.print(f"  {example}", highlight=False)
    if summary.duplicates:
        err.print(f"ignored {summary.duplicates} duplicate order lines", highlight=False)


def evaluate(
    orders: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Flat order-lines CSV.")
    ],
    test_from: Annotated[
        str | None, typer.Option(help="Test on orders on/after this ISO date (UTC if naive).")
    ] = None,
    test_days: Annotated[
        int | None,
        typer.Option(help=f"Test on the last N days (default {DEFAULT_TEST_DAYS}).", min=1),
    ] = None,
    repeat: Annotated[
        bool, typer.Option(help="Count repeat purchases as hits; keep purchased items.")
    ] = False,
    k: Annotated[int, typer.Option(help="Cut-off of the top-k metrics.", min=1)] = 10,
    recipes: Annotated[
        str | None, typer.Option(help="Comma-separated recipes (default: all).")
    ] = None,
    budget_seconds: Annotated[
        float, typer.Option(help="Hyper-parameter search budget per recipe.", min=0)
    ] = 60.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON only.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Fail on the first bad line.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of randomised recipes.")] = 7,
    new_items_share: Annotated[
        float,
        typer.Option(
            help="Share of the slots the cold-start report gives new products "
            "(MGRECS_NEW_ITEMS_SHARE in serving).",
            min=0.0,
            max=1.0,
        ),
    ] = DEFAULT_NEW_ITEMS_SHARE,
    objective: Annotated[
        Objective,
        typer.Option(help="margin: also the trade-off of margin against relevance."),
    ] = Objective.relevance,
    catalogue: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Catalogue CSV with product_id and price, cost (or margin): the margins "
            "of --objective margin.",
        ),
    ] = None,
) -> None:
    """Evaluate every recipe and the popularity baselines on ORDERS (time split)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mgrecs.engine.evaluation import (
        BASELINES,
        REPEAT_BASELINE,
        InsufficientData,
        default_catalog,
        evaluate_all,
    )
    from mgrecs.engine.orders_file import OrdersFileError, read_orders

    out, err = Console(), Console(stderr=True)
    if not out.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        out = Console(width=160)
    if test_from is not None and test_days is not None:
        raise _fail(err, "give --test-from or --test-days, not both")
    margins: dict[str, float] | None = None
    if objective is Objective.margin:
        import asyncpg

        from mgrecs.engine.evaluation.margin_curve import MarginFileError, read_margins

        source = str(catalogue) if catalogue is not None else "the database"
        try:
            margins = read_margins(catalogue) if catalogue is not None else _stored_margins()
        except (MarginFileError, UnicodeDecodeError) as error:
            raise _fail(err, f"{catalogue}: {error}") from None
        except (OSError, asyncpg.PostgresError) as error:
            raise _fail(
                err,
                f"--objective margin reads the products' margins from the database "
                f"(MGRECS_DATABASE_URL) without --catalogue FILE, and it failed: {error}",
            ) from None
        if not margins:
            raise _fail(err, f"{source}: no product with a price and a cost")
    try:
        boundary = _parse_date(test_from) if test_from is not None else None
    except ValueError:
        raise _fail(err, f"--test-from {test_from!r} is not an ISO-8601 date") from None
    catalog = default_catalog()
    chosen = (
        [name.strip() for name in recipes.split(",") if name.strip()]
        if recipes is not None
        else [name for name in catalog.names if name not in (*BASELINES, REPEAT_BASELINE)]
    )
    unknown = [name for name in chosen if name not in catalog.names]
    if unknown:
        raise _fail(
            err, f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(catalog.names)}"
        )

    try:
        with err.status(f"reading {orders}"):
            data = read_orders(orders, strict=strict)
    except OrdersFileError as error:
        raise _fail(err, f"{orders}: {error}") from None
    _read_warnings(err, data.summary)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} recipes"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("evaluating", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        try:
            report = evaluate_all(
                data.interactions,
                chosen,
                test_from=boundary,
                test_days=None if boundary else (test_days or DEFAULT_TEST_DAYS),
                repeat=repeat,
                k=k,
                budget_seconds=budget_seconds,
                seed=seed,
                catalog=catalog,
                on_progress=on_progress,
            )
        except InsufficientData as error:
            raise _fail(err, f"too little data: {error}") from None

    from mgrecs.engine.dataset import Lines
    from mgrecs.engine.evaluation.cold_start import cold_start_report

    served = report.served
    assert served.top is not None  # evaluate_all keeps each recipe's lists
    cold = cold_start_report(
        Lines.of(data.interactions),
        report.split,
        served.recipe,
        served.top,
        data.products,
        k,
        new_items_share,
    )
    curve = None
    if margins is not None:
        from mgrecs.engine.evaluation.margin_curve import margin_curve

        with err.status(f"margin against relevance ({served.recipe})"):
            curve = margin_curve(
                catalog.make(served.recipe, dict(served.params), seed),
                report.split,
                margins,
                k,
                name=served.recipe,
            )
    if json_output:
        document = report.to_dict()
        document["cold_start"] = cold.to_dict()
        if curve is not None:
            document["margin"] = curve.to_dict()
        document["input"] = {
            "file": str(orders),
            "lines_read": data.summary.lines_read,
            "lines_skipped": data.summary.lines_skipped,
            "duplicates": data.summary.duplicates,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    split = report.split
    validation = split.validation
    out.print(
        f"train {split.train_from:%Y-%m-%d} .. {split.test_from:%Y-%m-%d %H:%M} "
        + (f"(validation from {validation.test_from:%Y-%m-%d %H:%M}) " if validation else "")
        + f"| test until {split.test_to:%Y-%m-%d %H:%M} | "
        + ("repeat purchases count" if split.repeat else "new products only"),
        highlight=False,
    )
    out.print(_table(report))
    out.print(_cold_start_table(cold))
    if curve is not None:
        out.print(_margin_table(curve))
    served = report.served
    out.print(
        f"a retrain would serve {served.recipe} (the best on validation; "
        f"NDCG@{report.k} {served.metrics.ndcg:.4f} on test)",
        highlight=False,
    )
    out.print(_verdict(report), highlight=False)
