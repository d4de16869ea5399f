"""`mgrecs aws`: the AWS resources AWS mode runs on (docs/aws.md)."""

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # aioboto3 and the batch service, imported by the command that runs
    from mgrecs.batch.public import Provisioning

app = typer.Typer(help="AWS mode: the AWS resources it runs on (docs/aws.md).")


def _name(value: str) -> str:
    from mgrecs.batch.public import check_name

    try:
        return check_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def report(done: "Provisioning", dry_run: bool) -> list[str]:
    """What a run prints: one line per resource, then the settings to use (plain lines, to
    copy into the environment)."""
    lines = [
        f"{r.outcome:<12}  {r.kind:<13}  {r.name}  {r.arn}".rstrip()
        + (f"  ({r.detail})" if r.detail else "")
        for r in done.resources
    ]
    if done.mismatches:
        lines.append(
            f"{len(done.mismatches)} resource(s) do not match: reported, not replaced"
            " (docs/aws.md, Provisioning)"
        )
    if done.error:
        lines.append(f"stopped: {done.error}")
    if dry_run:
        lines.append("dry run: nothing was created")
    if done.settings:
        lines.append("")
        lines.append("# settings to use" + (" (those known so far)" if dry_run else ""))
        lines.extend(f"{name}={value}" for name, value in done.settings.items())
    return lines


@app.command("provision")
def provision_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan: look up, create nothing.")
    ] = False,
    name: Annotated[
        str,
        typer.Option(
            help="The dataset group's name, and every resource's prefix (the default bucket's"
            " too, with the account and the region)."
        ),
    ] = "mgrecs",
) -> None:
    """Create or adopt, idempotently, the S3 bucket and IAM role Personalize uses, the
    dataset group, schemas, datasets, event tracker, filters, solutions and campaigns AWS
    mode needs; print what was created or found and the settings to use. A resource that
    exists with another schema, expression, recipe or policy is reported, not replaced, and
    the command exits 1 (as when AWS refuses a call or a resource fails)."""
    from mgrecs.batch.public import provision
    from mgrecs.common.settings import get_settings

    done = asyncio.run(provision(get_settings(), _name(name), dry_run=dry_run))
    for line in report(done, dry_run):
        typer.echo(line)
    if done.mismatches or done.error:
        raise typer.Exit(1)
