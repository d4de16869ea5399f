"""Prometheus metrics of the ingest service (HTTP push and CSV backfill) and of the pull
connector (`mgrecs-connector`)."""

from prometheus_client import Counter, Gauge, Histogram

from mgrecs.common.metrics import http_metrics

ORDERS_ACCEPTED = Counter(
    "mgrecs_ingest_orders_accepted_total", "Orders published to Kafka", ["source"]
)
PRODUCTS_ACCEPTED = Counter(
    "mgrecs_ingest_products_accepted_total", "Catalogue records published to Kafka", ["source"]
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
CONNECTOR_REQUESTS = Counter(
    "mgrecs_connector_requests_total", "Requests to the company's order API", ["outcome"]
)
CONNECTOR_RECORDS = Counter(
    "mgrecs_connector_records_total", "Company records handled by the connector", ["outcome"]
)
CONNECTOR_API_DOWN = Gauge(
    "mgrecs_connector_api_down", "1 while the company's order API fails after every retry"
)
CONNECTOR_LAST_SYNC = Gauge(
    "mgrecs_connector_last_success_timestamp_seconds", "When a sync pass last completed"
)
CONNECTOR_WATERMARK = Gauge(
    "mgrecs_connector_watermark_timestamp_seconds",
    "The company's updated_at of the last order synced (the watermark), on the leader",
)
CONNECTOR_SYNC_ERRORS = Counter(
    "mgrecs_connector_sync_errors_total",
    "Sync passes cut short, by what failed (api, broker, database, lock)",
    ["error"],
)
CONNECTOR_LEADER = Gauge(
    "mgrecs_connector_leader",
    "1 on the connector replica holding the puller lock (the one pulling), 0 on a standby",
)
HTTP = http_metrics("ingest")
