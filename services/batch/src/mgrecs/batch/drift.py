"""Model health: do recent purchases still look like what the active model learned from?

Checked after every batch job (and by `mgrecs drift`) from PostgreSQL alone. "Recent" is the
order lines placed after the active version was trained; they are compared with the
purchases before it:

- unseen customers / products: the share of recent lines by customers, or of products, with
  no purchase before training (the model can only answer them from popularity);
- popularity shift: how much of their share the training period's TOP_PRODUCTS most bought
  products (of its last POPULARITY_DAYS) lost: 0 when they sell as before, 1 when nobody
  buys them any more (top products, not every product: with a few hundred recent lines over
  thousands of products, a per-product distance is mostly sampling noise);
- metrics over time: the active version's validation NDCG@10 against the median of the
  versions before it;
- online accuracy (`mgrecs.batch.online`): its NDCG@10 on what customers bought after it
  served them, against the previous version's (flagged below `online_alert_share` of it).

Each measure over its `drift_*` limit is a flag; any flag marks the report drifted, which the
status shows and, with `drift_retrain`, publishes a retrain tick.
"""

import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from mgrecs.batch.impact_gauges import refresh_impact_gauges
from mgrecs.batch.metrics import DRIFT_FLAGGED
from mgrecs.batch.online import check_online
from mgrecs.common.channels import publish_tick
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.store import order_reads, reports
from mgrecs.store.model_versions import NoActiveModel, active_model, mode_recipe, ndcg_history

TOP_PRODUCTS = 100
POPULARITY_DAYS = 90
PREVIOUS_VERSIONS = 5

log = get_logger(__name__)


@dataclass
class DriftReport:
    model_version: str
    trained_at: datetime
    recent_lines: int
    unseen_customer_share: float | None = None
    unseen_product_share: float | None = None
    popularity_shift: float | None = None
    ndcg: float | None = None
    previous_ndcg_median: float | None = None
    online: dict[str, Any] | None = None
    """Online accuracy (customers, precision@10, recall@10, ndcg@10) of the active version."""
    previous_online_ndcg: float | None = None
    rolled_back_to: str | None = None
    """The version `auto_rollback` re-activated after the online alert."""
    flags: list[str] = field(default_factory=list)
    judged: bool = True
    """False when there were fewer than `drift_min_lines` recent lines."""

    @property
    def drifted(self) -> bool:
        return bool(self.flags)

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["trained_at"] = self.trained_at.isoformat()
        document["drifted"] = self.drifted
        return document


async def measure_drift(pool: asyncpg.Pool, settings: Settings) -> DriftReport:
    """Measure the active version against the purchases since it was trained (raises
    NoActiveModel before the first retrain)."""
    version = await active_model(pool, mode_recipe(settings))
    assert version.trained_at is not None
    since = version.trained_at
    unseen = await order_reads.unseen_lines(pool, since)
    report = DriftReport(version.version, since, unseen["lines"])
    history = await ndcg_history(pool, since, PREVIOUS_VERSIONS + 1, version.recipe)
    _judge_metrics(report, history, settings)
    if report.recent_lines < settings.drift_min_lines:
        report.judged = False
        return report
    lines = report.recent_lines
    report.unseen_customer_share = unseen["unseen_customer_lines"] / lines
    report.unseen_product_share = unseen["unseen_product_lines"] / lines
    shares = await order_reads.top_product_shares(pool, since, POPULARITY_DAYS, TOP_PRODUCTS)
    if shares["before"]:
        report.popularity_shift = max(0.0, 1.0 - float(shares["recent"]) / float(shares["before"]))
    limit = settings.drift_max_unseen_share
    for what, share in (
        ("customers", report.unseen_customer_share),
        ("products", report.unseen_product_share),
    ):
        if share > limit:
            report.flags.append(
                f"unseen {what}: {share:.0%} of recent order lines (limit {limit:.0%})"
            )
    shift = report.popularity_shift
    if shift is not None and shift > settings.drift_max_popularity_shift:
        report.flags.append(
            f"popularity shift: the top {TOP_PRODUCTS} products lost {shift:.0%} of their share "
            f"(limit {settings.drift_max_popularity_shift:.0%})"
        )
    return report


def _judge_metrics(
    report: DriftReport, history: list[tuple[str, float]], settings: Settings
) -> None:
    """Compare the active version's validation NDCG@10 with the median of those before."""
    if not history or history[0][0] != report.model_version:
        return  # the active version has no validation figure
    report.ndcg = history[0][1]
    previous = [ndcg for _, ndcg in history[1:]]
    if not previous:
        return
    report.previous_ndcg_median = median = statistics.median(previous)
    if median > 0 and report.ndcg < median * (1 - settings.drift_max_ndcg_drop):
        report.flags.append(
            f"validation NDCG@10 {report.ndcg:.4f} is {1 - report.ndcg / median:.0%} below the "
            f"previous versions' median {median:.4f} (limit {settings.drift_max_ndcg_drop:.0%})"
        )


async def check_drift(pool: asyncpg.Pool, settings: Settings) -> tuple[int, DriftReport]:
    """Measure (data and online accuracy), store the report, and ask for a retrain when
    drifted and configured to (unless the online alert rolled the version back)."""
    report = await measure_drift(pool, settings)
    now = datetime.now(UTC)
    online = await check_online(pool, settings, now)
    if online is not None and online.model_version == report.model_version:
        report.online = online.metrics.as_dict()
        report.previous_online_ndcg = online.previous_ndcg
        report.rolled_back_to = online.rolled_back_to
        if online.alert:
            report.flags.append(online.alert)
    row = await reports.save_drift(pool, report.model_version, report.drifted, report.as_json())
    DRIFT_FLAGGED.set(1 if report.drifted else 0)
    if report.drifted:
        log.warning("drift_flagged", version=report.model_version, flags=report.flags)
        if settings.drift_retrain and report.rolled_back_to is None:
            await _request_retrain(settings, row["id"])
    try:
        await refresh_impact_gauges(pool, settings, now)
    except asyncpg.PostgresError as exc:
        log.warning("impact_gauges_failed", error=repr(exc))
    return row["id"], report


async def check_drift_logged(pool: asyncpg.Pool, settings: Settings) -> None:
    """`check_drift` after a cache fill: a failure to measure is logged, not the fill's."""
    try:
        await check_drift(pool, settings)
    except (asyncpg.PostgresError, KafkaError, OSError, NoActiveModel) as exc:
        log.warning("drift_check_failed", error=repr(exc))


async def _request_retrain(settings: Settings, report_id: int) -> None:
    """One retrain per drift report (its id is the tick's): a redelivery runs it once."""
    tick = await publish_tick(settings, "retrain", tick_id=f"retrain-drift-{report_id}")
    log.info("drift_retrain_requested", tick_id=tick.tick_id)


async def latest_drift(pool: asyncpg.Pool, limit: int = 10) -> list[dict[str, Any]]:
    """The newest drift reports, newest first (id, checked_at and the report)."""
    rows = await reports.latest_drift(pool, limit)
    return [
        {"id": row["id"], "checked_at": row["checked_at"].isoformat(), **row["report"]}
        for row in rows
    ]
