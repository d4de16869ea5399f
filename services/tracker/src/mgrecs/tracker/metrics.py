"""Prometheus metrics of the tracker, labelled by sink (`db` or `events`)."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("mgrecs_tracker_consumed_total", "Messages read from `orders`", ["sink"])
WRITTEN = Counter("mgrecs_tracker_written_total", "Orders written to PostgreSQL", ["sink"])
FORWARDED = Counter("mgrecs_tracker_forwarded_total", "Events accepted by PutEvents", ["sink"])
DEAD_LETTERED = Counter(
    "mgrecs_tracker_dead_lettered_total", "Messages sent to the dead-letter topic", ["sink"]
)
SKIPPED = Counter(
    "mgrecs_tracker_skipped_total",
    "Invalid messages skipped (dead-lettered by the db sink)",
    ["sink"],
)
REJECTED = Counter(
    "mgrecs_tracker_rejected_total", "Events the PutEvents target refused for good", ["sink"]
)
AUTH_FAILURES = Counter(
    "mgrecs_tracker_auth_failures_total",
    "Calls the PutEvents target refused for our credentials (403: wrong key, skewed clock)",
    ["sink"],
)
RETRIES = Counter(
    "mgrecs_tracker_retries_total", "Batches retried after a failure of the target", ["sink"]
)
BATCH_SECONDS = Histogram(
    "mgrecs_tracker_batch_seconds", "Time to make one batch durable", ["sink"]
)
CIRCUIT_OPEN = Gauge(
    "mgrecs_tracker_circuit_open", "1 while the PutEvents target is taken as down", ["sink"]
)
CONSUMER_LAG = Gauge(
    "mgrecs_tracker_consumer_lag",
    "Messages of `orders` not yet read by the sink's group (at its last poll)",
    ["sink"],
)
END_TO_END_SECONDS = Histogram(
    "mgrecs_tracker_end_to_end_seconds",
    "From an order's publication to its batch being durable in the sink",
    ["sink"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SERVED_PARTITIONS_DROPPED = Counter(
    "mgrecs_tracker_served_partitions_dropped_total",
    "Day partitions of `served` dropped by retention (served_retention_days)",
    ["sink"],
)
