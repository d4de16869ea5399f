"""`mgrecs rules`: the business rules (docs/concepts.md, Merchandising), as `/v1/admin/rules`
manages them: list, add, update, disable. Validated as the API validates them; every API
process applies a change within `rules_refresh_seconds`."""

import getpass
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mgrecs.cli.models import with_pool

if TYPE_CHECKING:
    import asyncpg

app = typer.Typer(help="Business rules: filters, boosts and buries, pins, promotions.")
console = Console()

Products = Annotated[
    list[str] | None, typer.Option("--product", help="A product id (repeat for several).")
]
Categories = Annotated[
    list[str] | None, typer.Option("--category", help="A category (repeat for several).")
]
Attributes = Annotated[
    list[str] | None,
    typer.Option("--attribute", help="NAME=VALUE the product's attributes hold (repeatable)."),
]
MinPrice = Annotated[float | None, typer.Option(help="Products at this price or more.")]
MaxPrice = Annotated[float | None, typer.Option(help="Products at this price or less.")]
OutOfStock = Annotated[bool, typer.Option("--out-of-stock", help="Products not in stock.")]
Inactive = Annotated[bool, typer.Option("--inactive", help="Products withdrawn from sale.")]
Factor = Annotated[float | None, typer.Option(help="boost: > 1 boosts, < 1 buries.")]
Slot = Annotated[int | None, typer.Option(help="pin: the 1-based position.")]
Share = Annotated[float | None, typer.Option(help="promotion: the share of the slots (0-1).")]
Region = Annotated[str | None, typer.Option(help="Only lists of this region.")]
Starts = Annotated[datetime | None, typer.Option(help="In force from (UTC unless zoned).")]
Ends = Annotated[datetime | None, typer.Option(help="In force until, excluded.")]
Name = Annotated[str | None, typer.Option(help="What the rule is for.")]
By = Annotated[str | None, typer.Option("--by", help="Who makes the change (default: cli:$USER).")]


def _actor(by: str | None) -> str:
    return by or f"cli:{getpass.getuser()}"


def _attributes(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    pairs = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{value!r}: give NAME=VALUE", param_hint="--attribute")
        pairs[name] = text
    return pairs


def _target(
    products: list[str] | None,
    categories: list[str] | None,
    min_price: float | None,
    max_price: float | None,
    out_of_stock: bool,
    inactive: bool,
    attributes: list[str] | None,
) -> dict[str, Any]:
    target = {
        "products": products or None,
        "categories": categories or None,
        "min_price": min_price,
        "max_price": max_price,
        "out_of_stock": out_of_stock or None,
        "inactive": inactive or None,
        "attributes": _attributes(attributes),
    }
    return {k: v for k, v in target.items() if v is not None}


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    from datetime import UTC

    return value.replace(tzinfo=UTC)


async def _save(pool: "asyncpg.Pool", written: dict[str, Any], rule_id: int | None, by: str) -> str:
    """Validate, check the catalogue, store; what to print."""
    from pydantic import ValidationError

    from mgrecs.common.rules import RuleFields
    from mgrecs.store import rules as store

    try:
        fields = RuleFields.model_validate(written)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(problems) from exc
    if problem := await store.catalogue_problem(pool, fields.target):
        raise typer.BadParameter(problem)
    if rule_id is None:
        stored = await store.create_rule(pool, store.fields_of(fields), by)
        return f"rule {stored.rule_id} created"
    if await store.update_rule(pool, rule_id, store.fields_of(fields), by) is None:
        raise typer.BadParameter(f"no rule {rule_id}")
    return f"rule {rule_id} updated"


@app.command("list")
def list_rules(
    all_rules: Annotated[bool, typer.Option("--all", help="Disabled rules too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON lines.")] = False,
) -> None:
    """The rules, oldest first."""
    from mgrecs.store import rules as store

    rows = with_pool(lambda pool: store.rules(pool, include_disabled=all_rules))
    if as_json:
        for row in rows:
            line = {"rule_id": row.rule_id, **store.written_of(row.fields)}
            line |= {"created_by": row.created_by, "updated_by": row.updated_by}
            typer.echo(json.dumps(line, default=str))
        return
    table = Table(title="business rules")
    for column in ("id", "kind", "name", "region", "target", "value", "window", "on", "changed"):
        table.add_column(column)
    for row in rows:
        f = row.fields
        value = {"boost": f.factor, "pin": f.slot, "promotion": f.share}.get(f.kind)
        window = f"{f.starts_at or '…'} – {f.ends_at or '…'}" if f.starts_at or f.ends_at else ""
        table.add_row(
            str(row.rule_id),
            f.kind,
            f.name,
            f.region or "all",
            json.dumps(dict(f.target)),
            "" if value is None else f"{value:g}",
            window,
            "yes" if f.enabled else "no",
            f"{row.updated_at:%Y-%m-%d %H:%M} by {row.updated_by}",
        )
    console.print(table)


@app.command()
def add(
    kind: Annotated[str, typer.Argument(help="filter, boost, pin or promotion")],
    product: Products = None,
    category: Categories = None,
    min_price: MinPrice = None,
    max_price: MaxPrice = None,
    out_of_stock: OutOfStock = False,
    inactive: Inactive = False,
    attribute: Attributes = None,
    factor: Factor = None,
    slot: Slot = None,
    share: Share = None,
    region: Region = None,
    starts: Starts = None,
    ends: Ends = None,
    name: Name = None,
    by: By = None,
) -> None:
    """Add a rule, e.g. `mgrecs rules add filter --category knives` or `mgrecs rules add pin
    --product P0007 --slot 1 --region north`."""
    written = {
        "kind": kind,
        "name": name or "",
        "region": region,
        "target": _target(
            product, category, min_price, max_price, out_of_stock, inactive, attribute
        ),
        "factor": factor,
        "slot": slot,
        "share": share,
        "starts_at": _utc(starts),
        "ends_at": _utc(ends),
    }
    console.print(with_pool(lambda pool: _save(pool, written, None, _actor(by))))


@app.command()
def update(
    rule_id: Annotated[int, typer.Argument(help="The rule's id (`mgrecs rules list`).")],
    product: Products = None,
    category: Categories = None,
    min_price: MinPrice = None,
    max_price: MaxPrice = None,
    out_of_stock: OutOfStock = False,
    inactive: Inactive = False,
    attribute: Attributes = None,
    factor: Factor = None,
    slot: Slot = None,
    share: Share = None,
    region: Region = None,
    starts: Starts = None,
    ends: Ends = None,
    name: Name = None,
    enable: Annotated[bool, typer.Option("--enable", help="Apply a disabled rule again.")] = False,
    by: By = None,
) -> None:
    """Change the given fields of a rule (a target option replaces the whole target)."""
    from mgrecs.store import rules as store

    async def run(pool: "asyncpg.Pool") -> str:
        found = await store.rule(pool, rule_id)
        if found is None:
            raise typer.BadParameter(f"no rule {rule_id}")
        written = store.written_of(found.fields)
        target = _target(product, category, min_price, max_price, out_of_stock, inactive, attribute)
        changes = {
            "target": target or None,
            "factor": factor,
            "slot": slot,
            "share": share,
            "region": region,
            "starts_at": _utc(starts),
            "ends_at": _utc(ends),
            "name": name,
            "enabled": True if enable else None,
        }
        written |= {k: v for k, v in changes.items() if v is not None}
        return await _save(pool, written, rule_id, _actor(by))

    console.print(with_pool(run))


@app.command()
def disable(rule_id: Annotated[int, typer.Argument(help="The rule's id.")], by: By = None) -> None:
    """Stop applying a rule (it is kept; `update --enable` applies it again)."""
    from mgrecs.store import rules as store

    async def run(pool: "asyncpg.Pool") -> str:
        found = await store.rule(pool, rule_id)
        if found is None:
            raise typer.BadParameter(f"no rule {rule_id}")
        fields = store.RuleFields(**{**found.fields.__dict__, "enabled": False})
        await store.update_rule(pool, rule_id, fields, _actor(by))
        return f"rule {rule_id} disabled"

    console.print(with_pool(run))
