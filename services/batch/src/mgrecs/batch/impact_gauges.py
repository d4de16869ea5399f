"""The impact gauges (`mgrecs_attributed_*`, `mgrecs_baseline_revenue`,
`mgrecs_recommendation_uplift`): the impact report of the last attribution window, refreshed
with the drift check after each cache fill, so that Prometheus and Grafana draw what
recommendations earn per model version without querying the database on every scrape."""

from datetime import datetime, timedelta

import asyncpg

from mgrecs.batch.metrics import ATTRIBUTED_ORDERS, ATTRIBUTED_REVENUE, BASELINE_REVENUE, UPLIFT
from mgrecs.common.settings import Settings
from mgrecs.store.impact_report import NOT_SERVED, ImpactReport, impact_report


async def refresh_impact_gauges(
    pool: asyncpg.Pool, settings: Settings, now: datetime
) -> ImpactReport:
    """Measure [now - window, now) per model version and set the gauges (versions no longer
    in the window disappear)."""
    window = settings.attribution_window_days
    report = await impact_report(
        pool,
        now - timedelta(days=window),
        now,
        window,
        ["model_version"],
        settings.impact_holdout_arm,
    )
    ATTRIBUTED_REVENUE.clear()
    ATTRIBUTED_ORDERS.clear()
    for group in report.groups:
        version = group.key["model_version"]
        if version in (None, NOT_SERVED):
            continue
        ATTRIBUTED_REVENUE.labels(version).set(group.attributed.revenue)
        ATTRIBUTED_ORDERS.labels(version).set(group.attributed.orders)
    BASELINE_REVENUE.set(report.total.baseline.revenue)
    UPLIFT.set(report.uplift.difference.value if report.uplift is not None else 0.0)
    return report
