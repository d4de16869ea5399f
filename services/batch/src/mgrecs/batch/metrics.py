"""Prometheus metrics of the batch service: job durations, rows written, ticks handled."""

from prometheus_client import Counter, Gauge, Histogram

JOB_SECONDS = Histogram(
    "mgrecs_batch_job_seconds",
    "Duration of a batch job",
    ["job"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
ROWS_WRITTEN = Counter(
    "mgrecs_batch_rows_written_total", "Cache rows upserted by batch inference", ["table"]
)
ROWS_DELETED = Counter(
    "mgrecs_batch_rows_deleted_total", "Stale cache rows removed by batch inference", ["table"]
)
TICKS = Counter("mgrecs_batch_ticks_total", "Schedule ticks handled", ["kind", "outcome"])
DEAD_LETTERS = Counter(
    "mgrecs_batch_dead_letters_total", "Schedule ticks sent to the dead-letter topic"
)
MODEL_NDCG = Gauge(
    "mgrecs_batch_model_validation_ndcg",
    "Validation NDCG@10 of the last trained model's recipe, and of popularity on the same"
    " period for comparison",
    ["model"],
)
SHARDS = Counter(
    "mgrecs_batch_infer_shards_total",
    "Infer shard tasks handled: written, skipped (already done), failed, invalid",
    ["outcome"],
)
STEP_SECONDS = Histogram(
    "mgrecs_batch_step_seconds",
    "Duration of one step of a batch job, by the tick's kind",
    ["kind", "step"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
DRIFT_FLAGGED = Gauge(
    "mgrecs_drift_flagged", "1 when the last drift check flagged the active model, else 0"
)
ONLINE_METRIC = Gauge(
    "mgrecs_online_metric",
    "Online accuracy of the active version: its served lists against what the customers"
    " bought next (precision@10, recall@10, ndcg@10)",
    ["model_version", "metric"],
)
ONLINE_ALERT = Gauge(
    "mgrecs_online_accuracy_alert",
    "1 when the active version's online NDCG@10 is below online_alert_share of the previous"
    " version's, else 0",
)
ATTRIBUTED_REVENUE = Gauge(
    "mgrecs_attributed_revenue",
    "Revenue of order lines attributed to recommendations over the last attribution window,"
    " by the model version that served them",
    ["model_version"],
)
ATTRIBUTED_ORDERS = Gauge(
    "mgrecs_attributed_orders",
    "Orders with a line attributed to recommendations over the last attribution window",
    ["model_version"],
)
BASELINE_REVENUE = Gauge(
    "mgrecs_baseline_revenue",
    "Revenue of order lines not attributed to recommendations over the last attribution window",
)
UPLIFT = Gauge(
    "mgrecs_recommendation_uplift",
    "Purchase rate of the products customers were shown minus that of the others (last"
    " attribution window; docs/concepts.md, Impact)",
)
TICKS_PUBLISHED = Counter(
    "mgrecs_scheduler_ticks_published_total", "Schedule ticks the scheduler published", ["kind"]
)
