"""Prometheus metrics of the ingest service (HTTP push and CSV backfill)."""

from prometheus_client import Counter, Histogram

ORDERS_ACCEPTED = Counter(
    "mgrecs_ingest_orders_accepted_total", "Orders published to Kafka", ["source"]
)
REQUESTS_REJECTED = Counter(
    "mgrecs_ingest_requests_rejected_total", "HTTP pushes refused", ["reason"]
)
BACKFILL_LINES_REJECTED = Counter(
    "mgrecs_ingest_backfill_lines_rejected_total", "CSV lines sent to the dead-letter topic"
)
PUBLISH_SECONDS = Histogram(
    "mgrecs_ingest_publish_seconds", "Time from request to the broker's acks"
)
