"""`mgrecs jobs`: the batch jobs the ticks ran, with each step's seconds (where a slow or
failed retrain spent its time, or stopped)."""

from typing import Any

from rich.console import Console
from rich.table import Table

from mgrecs.cli.models import with_pool

console = Console()
STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow"}


def _status(detail: dict[str, Any], finished: bool) -> str:
    if not finished:
        return "running"
    status = str(detail.get("status", "-"))
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _steps(steps: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{step['step']} {step['seconds']:.1f}s" + ("" if step["status"] == "ok" else " (failed)")
        for step in steps
    )


def _outcome(detail: dict[str, Any]) -> str:
    """What the job produced or why it did not: version, reason or error (an online tick:
    the version's online NDCG@10, and its alert)."""
    if "error" in detail or "reason" in detail:
        return str(detail.get("error") or detail.get("reason"))
    if "check" in detail:
        return _online_outcome(detail["check"])
    model = detail.get("model", detail)
    return str(model.get("version", ""))


def _online_outcome(check: dict[str, Any] | None) -> str:
    """An online tick's check in a line: what it scored, and the alert and rollback."""
    if check is None:
        return "no active version"
    metrics = check["metrics"]
    ndcg = metrics["ndcg"]
    found = f"{check['model_version']} online NDCG@10 " + (
        "-" if ndcg is None else f"{ndcg:.4f} ({metrics['customers']} customers)"
    )
    if check.get("alert"):
        found += f"; ALERT: {check['alert']}"
    if check.get("rolled_back_to"):
        found += f"; rolled back to {check['rolled_back_to']}"
    return found


def jobs(limit: int = 20) -> None:
    """List the latest batch jobs (one per tick): status, seconds and the steps' seconds."""
    from mgrecs.store.jobs import recent

    rows = with_pool(lambda pool: recent(pool, limit))
    table = Table(title="batch jobs (newest first)")
    for column in ("tick", "kind", "started", "status", "seconds", "steps", "outcome"):
        table.add_column(column)
    for row in rows:
        detail = dict(row["detail"])
        seconds = detail.get("seconds")
        table.add_row(
            row["tick_id"],
            row["kind"],
            f"{row['started_at']:%Y-%m-%d %H:%M:%S}",
            _status(detail, row["finished_at"] is not None),
            "-" if seconds is None else f"{seconds:.1f}",
            _steps(list(row["steps"])),
            _outcome(detail),
        )
    console.print(table)
