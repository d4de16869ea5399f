"""Online accuracy: is the active version right about what customers buy after it served them?

Every day on its own `online` tick (MGRECS_SCHEDULE_ONLINE, whether or not a cache fill ran)
and after each cache fill (with the drift check) the active version is scored on the lists it
served (`served`, endpoint `user`) since it was trained: each customer's first
such list, its top 10, against the distinct products of their placed orders after it;
precision, recall and NDCG@10 (binary relevance, as the offline evaluation) averaged over the
customers who bought. Stored per version and day (`online_metrics`: a second run the same
day replaces that day's figures, so the check is idempotent per day). Below
`online_alert_share` of the previous version's online NDCG@10 (with at least
`online_min_customers` customers), it alerts; with `auto_rollback` it rolls back to that
version and asks for an infer so that the cache follows.
"""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg

from mgrecs.batch import activation
from mgrecs.batch.metrics import ONLINE_ALERT, ONLINE_METRIC
from mgrecs.batch.steps import Steps
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings
from mgrecs.store import model_versions, online_metrics
from mgrecs.store.online_metrics import OnlineMetrics, ServedThenBought

K = 10

log = get_logger(__name__)


@dataclass
class OnlineCheck:
    model_version: str
    metrics: OnlineMetrics
    previous_version: str | None = None
    previous_ndcg: float | None = None
    alert: str | None = None
    rolled_back_to: str | None = None

    @property
    def judged(self) -> bool:
        return self.metrics.ndcg is not None


@dataclass
class OnlineRun:
    """What an `online` tick did (its detail in `processed_ticks`, `mgrecs jobs`): the day
    scored, and the check (None without an active version: nothing to score yet)."""

    day: date
    check: OnlineCheck | None


async def run_online(pool: asyncpg.Pool, settings: Settings, steps: Steps) -> OnlineRun:
    """The `online` tick's job: `check_online` now, whatever the cache fills did."""
    now = datetime.now(UTC)
    async with steps.step("online"):
        check = await check_online(pool, settings, now)
    if check is None:
        log.info("online_no_active_version")
    return OnlineRun(now.date(), check)


def score(lists: list[ServedThenBought], k: int = K) -> OnlineMetrics:
    """Mean precision@k, recall@k and NDCG@k over the customers (each with purchases)."""
    discounts = [1.0 / math.log2(rank + 2) for rank in range(k)]
    precision, recall, ndcg = [], [], []
    for customer in lists:
        truth = set(customer.bought)
        if not truth:
            continue
        hits = [product in truth for product in customer.top[:k]]
        found = sum(hits)
        ideal = math.fsum(discounts[: min(len(truth), k)])
        precision.append(found / k)
        recall.append(found / len(truth))
        ndcg.append(math.fsum(d for d, hit in zip(discounts, hits, strict=False) if hit) / ideal)
    n = len(precision)
    if n == 0:
        return OnlineMetrics(0, None, None, None)
    return OnlineMetrics(n, math.fsum(precision) / n, math.fsum(recall) / n, math.fsum(ndcg) / n)


async def check_online(pool: asyncpg.Pool, settings: Settings, now: datetime) -> OnlineCheck | None:
    """Score and store the active version's online accuracy; alert (and roll back when
    configured) below the share of the previous version's. None without an active version."""
    recipe = model_versions.mode_recipe(settings)
    active = await model_versions.find_active(pool, recipe)
    if active is None or active.trained_at is None:
        return None
    lists = await online_metrics.served_then_bought(pool, active.version, active.trained_at, K)
    metrics = score(lists)
    check = OnlineCheck(active.version, metrics)
    if metrics.customers:
        await online_metrics.save(pool, active.version, now.date(), metrics)
        ONLINE_METRIC.labels(active.version, "ndcg@10").set(metrics.ndcg or 0.0)
        ONLINE_METRIC.labels(active.version, "precision@10").set(metrics.precision or 0.0)
        ONLINE_METRIC.labels(active.version, "recall@10").set(metrics.recall or 0.0)
    check.previous_version = await model_versions.previous_version(pool, recipe)
    if check.previous_version is not None:
        found = await online_metrics.latest(pool, [check.previous_version])
        if check.previous_version in found:
            check.previous_ndcg = found[check.previous_version].ndcg
    _judge(check, settings)
    ONLINE_ALERT.set(1 if check.alert else 0)
    if check.alert:
        log.warning("online_accuracy_alert", version=check.model_version, alert=check.alert)
        if settings.auto_rollback and check.previous_version is not None:
            await _roll_back(pool, settings, check)
    return check


def _judge(check: OnlineCheck, settings: Settings) -> None:
    """Alert when judged on enough customers and below the share of the previous NDCG@10."""
    ndcg, previous = check.metrics.ndcg, check.previous_ndcg
    if ndcg is None or previous is None or previous <= 0:
        return
    if check.metrics.customers < settings.online_min_customers:
        return
    share = settings.online_alert_share
    if ndcg < previous * share:
        check.alert = (
            f"online NDCG@10 {ndcg:.4f} is below {share:.0%} of the previous version "
            f"{check.previous_version}'s {previous:.4f} ({check.metrics.customers} customers)"
        )


async def _roll_back(pool: asyncpg.Pool, settings: Settings, check: OnlineCheck) -> None:
    """Re-activate the previous version, then ask for an infer (its cache lists)."""
    activated = await activation.rollback(
        pool,
        settings,
        reason=f"rolled back automatically: {check.alert}",
        tick_id=f"infer-rollback-{check.model_version}",
    )
    check.rolled_back_to = activated.version
    log.warning("online_rollback", version=check.model_version, to=activated.version)
    if activated.error is not None:
        log.warning("online_rollback_infer_failed", error=activated.error)
