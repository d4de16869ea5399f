"""`mgrecs cache`: the cache generations (status) and operator invalidation."""

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mgrecs.cli.models import with_pool

app = typer.Typer(help="The recommendation cache: generations and invalidation.")
console = Console()


@app.command()
def status(limit: int = 10) -> None:
    """List the newest cache generations: state, shards done, rows, model version."""
    from mgrecs.store.cache_generations import recent

    rows = with_pool(lambda pool: recent(pool, limit))
    table = Table(title="cache generations (newest first)")
    for column in ("generation", "state", "shards", "users", "products", "model", "created"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.generation),
            row.state + (f" ({row.error})" if row.error else ""),
            f"{row.shards_done}/{row.shards}",
            str(row.users),
            str(row.products),
            row.model_version or "-",
            f"{row.created_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


@app.command()
def invalidate(
    everything: Annotated[bool, typer.Option("--all", help="The whole cache.")] = False,
    region: Annotated[str | None, typer.Option(help="Every customer of this region.")] = None,
    customer: Annotated[str | None, typer.Option(help="One customer.")] = None,
    refresh: Annotated[bool, typer.Option(help="Then publish an infer tick.")] = False,
) -> None:
    """Stop serving cached lists (the API answers in real time instead) until the next
    generation; with --refresh, ask for that generation now."""
    if [everything, region is not None, customer is not None].count(True) != 1:
        raise typer.BadParameter("give exactly one of --all, --region, --customer")
    from mgrecs.store import cache as cache_store

    done = with_pool(
        lambda pool: cache_store.invalidate(
            pool, everything=everything, region=region, customer=customer
        )
    )
    if done.generation is None:
        console.print("no cache generation is current: nothing to invalidate")
    else:
        console.print(
            f"invalidated {done.users} customer and {done.products} product rows"
            f" of generation {done.generation}"
        )
    if refresh:
        from mgrecs.common.channels import publish_tick
        from mgrecs.common.settings import get_settings

        sent = asyncio.run(publish_tick(get_settings(), "infer"))
        console.print(f"published infer tick {sent.tick_id}")
