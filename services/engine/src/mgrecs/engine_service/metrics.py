"""Prometheus metrics of the engine: operations answered, events taken in, model swaps."""

from prometheus_client import Counter, Histogram

from mgrecs.common.metrics import http_metrics

OPERATIONS = Counter(
    "mgrecs_engine_operations_total",
    "Personalize operations answered, by outcome (ok or the AWS error code)",
    ["operation", "outcome"],
)
LATENCY = Histogram(
    "mgrecs_engine_operation_seconds",
    "Time to answer a Personalize operation",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
EVENTS = Counter(
    "mgrecs_engine_events_total", "PutEvents events, accepted or duplicate", ["result"]
)
MODEL_LOADS = Counter(
    "mgrecs_engine_model_loads_total", "Attempts to load a newly active model", ["result"]
)
HTTP = http_metrics("engine")
FOLLOWED = Counter(
    "mgrecs_engine_followed_total",
    "Messages read from engine-events, by outcome (folded, own, unreadable)",
    ["result"],
)
PRUNED = Counter(
    "mgrecs_engine_pruned_lines_total",
    "Real-time history lines dropped because a newer model was trained on them",
)
