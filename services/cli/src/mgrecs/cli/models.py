"""`mgrecs models`, `mgrecs promote`, `mgrecs rollback`: see and steer which model serves
(the self-hosted versions, or AWS Personalize's with `MGRECS_BATCH_MODE=aws`)."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # imported where used: `mgrecs --help` starts without them
    import asyncpg

    from mgrecs.batch.public import activation

T = TypeVar("T")
console = Console()


def with_pool(work: Callable[["asyncpg.Pool"], Awaitable[T]]) -> T:
    """Run `work` with a small pool of its own (a CLI command is one short session)."""
    import asyncio

    from mgrecs.common.db import create_pool
    from mgrecs.common.settings import get_settings

    async def run() -> T:
        pool = await create_pool(get_settings().database_url, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def _ndcg(metrics: dict[str, Any], who: str) -> str:
    validation = metrics.get("validation")
    return "-" if validation is None else f"{validation[who]['ndcg@10']:.4f}"


def models(limit: int = 20) -> None:
    """List model versions: which serves, why, and their validation NDCG@10."""
    from mgrecs.common.settings import get_settings
    from mgrecs.store import model_versions

    recipe = model_versions.mode_recipe(get_settings())
    rows = with_pool(lambda pool: model_versions.versions(pool, limit, recipe))
    table = Table(title="model versions (newest first)")
    for column in ("version", "trained", "status", "recipe", "NDCG@10", "popularity", "why"):
        table.add_column(column)
    for row in rows:
        metrics = dict(row["metrics"])
        table.add_row(
            row["version"],
            f"{row['trained_at']:%Y-%m-%d %H:%M}",
            "[green]active[/green]" if row["active"] else "candidate",
            str(metrics.get("recipe", "-")),
            _ndcg(metrics, "chosen"),
            _ndcg(metrics, "popularity"),
            row["decision"] or "",
        )
    console.print(table)


def _report(done: "activation.Activated", said: str) -> None:
    """Say what serves now and which infer follows it; exit 1 when no infer could start."""
    console.print(f"[green]{said}[/green]")
    if done.infer is not None:
        console.print(f"infer tick {done.infer.tick_id} published: the cache follows it")
        return
    console.print(
        f"[red]no infer started ({done.error}): the old cache serves until the next"
        " infer; run `mgrecs tick infer`[/red]"
    )
    raise typer.Exit(code=1)


def promote(version: Annotated[str, typer.Argument(help="a version from `mgrecs models`")]) -> None:
    """Make VERSION the model that serves, and start an infer (the engine and the cache
    follow it)."""
    from mgrecs.batch.public import activation
    from mgrecs.common.settings import get_settings
    from mgrecs.store import model_versions

    settings = get_settings()
    try:
        done = with_pool(
            lambda pool: activation.promote(pool, settings, version, "promoted by an operator")
        )
    except model_versions.UnknownVersion as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    except activation.CampaignUpdateFailed as error:
        console.print(f"[red]{error}: the active version is unchanged[/red]")
        raise typer.Exit(code=1) from error
    _report(done, f"{version} is now active")


def rollback() -> None:
    """Re-activate the version that served before the current one, and start an infer."""
    from mgrecs.batch.public import activation
    from mgrecs.common.settings import get_settings
    from mgrecs.store import model_versions

    settings = get_settings()
    try:
        done = with_pool(lambda pool: activation.rollback(pool, settings))
    except model_versions.UnknownVersion as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    except activation.CampaignUpdateFailed as error:
        console.print(f"[red]{error}: the active version is unchanged[/red]")
        raise typer.Exit(code=1) from error
    _report(done, f"rolled back: {done.version} is active again")
