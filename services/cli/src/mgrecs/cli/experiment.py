"""`mgrecs experiment`: an experiment's report (`GET /v1/experiments/{id}`), as tables or
JSON. Asked of the API, which owns the report, with the first of `MGRECS_API_ADMIN_KEYS`."""

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
MEASURES = ("ctr", "conversion", "revenue_per_customer")


def _estimate(found: dict[str, float] | None) -> str:
    if found is None:
        return "–"
    return f"{found['value']:.4f} ({found['low']:.4f} to {found['high']:.4f})"


def _print(report: dict[str, Any]) -> None:
    """One row per arm and measure, then per compared arm and measure (narrow enough for a
    terminal)."""
    arms = Table("arm", "serves", "measure", "value (95 % CI)", "n", "needs")
    for arm in report["arms"]:
        serves = arm["model_version"] or f"holdout: {arm['serves']}"
        served = " ".join(f"{s}:{n}" for s, n in arm["served_from"].items()) or "–"
        arms.add_row(arm["arm"], serves, "served from", served, str(arm["impressions"]), "")
        for measure in MEASURES:
            size = arm["sample_size"][measure]
            needs = "–" if size is None or size["required"] is None else str(size["required"])
            observed = "" if size is None else str(size["observed"])
            arms.add_row("", "", measure, _estimate(arm[measure]), observed, needs)
    console.print(arms)
    compared = Table(f"vs {report['baseline']}", "measure", "difference (CI)", "p", "significant")
    for comparison in report["comparisons"]:
        for measure in MEASURES:
            found = comparison[measure]
            compared.add_row(
                comparison["arm"],
                measure,
                _estimate(found),
                "–" if found is None else f"{found['p_value']:.4f}",
                "–" if found is None else ("yes" if found["significant"] else "no"),
            )
    console.print(compared)
    console.print(f"mde {report['mde']:g}, alpha {report['alpha']:g}, power {report['power']:g}")
    for warning in (report["warning"], report["serving_warning"]):
        if warning:
            console.print(f"[yellow]{warning}[/yellow]")


def experiment(
    experiment_id: Annotated[str, typer.Argument(help="the experiment's id")],
    mde: Annotated[float, typer.Option(help="relative lift to detect (0.1: +10 %)")] = 0.1,
    alpha: Annotated[float, typer.Option(help="significance level, two-sided")] = 0.05,
    power: Annotated[float, typer.Option(help="chance to detect a lift of --mde")] = 0.8,
    api: Annotated[
        str | None, typer.Option(help="the API's URL (default: 127.0.0.1 on MGRECS_API_PORT)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Print an experiment's report: each arm's figures, the arms against the baseline with
    intervals and p-values, and the warnings (docs/concepts.md, Reading an experiment's
    report)."""
    import httpx

    from mgrecs.common.settings import get_settings

    settings = get_settings()
    keys = [key.strip() for key in settings.api_admin_keys.split(",") if key.strip()]
    base = api or f"http://127.0.0.1:{settings.api_port}"
    try:
        response = httpx.get(
            f"{base.rstrip('/')}/v1/experiments/{experiment_id}",
            params={"mde": mde, "alpha": alpha, "power": power},
            headers={"X-API-Key": keys[0]} if keys else {},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot reach the API at {base}: {exc}") from exc
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    report: dict[str, Any] = response.json()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print(report)
