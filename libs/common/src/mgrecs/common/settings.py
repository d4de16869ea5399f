"""One settings object for every service, read from `MGRECS_*` environment variables.

Each service reads only the fields it needs; keeping them in one place means an operator
finds every knob, and its default, in this file.
"""

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mgrecs.common.experiments import Experiment


class Settings(BaseSettings):
    """Every `MGRECS_*` setting. A field's docstring is its description, from which
    docs/settings.md is generated (`make docs`), so a new setting is documented where it is
    declared."""

    model_config = SettingsConfigDict(
        env_prefix="MGRECS_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    env: Literal["production", "development"] = "production"
    """`development` lets a service start with open reads and known placeholder secrets (the
    demo, tests); in `production` each service refuses to start without real secrets."""

    # Infrastructure
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    """PostgreSQL, as a libpq URL."""
    kafka_bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, comma separated."""
    topic_prefix: str = ""
    """Prepended to every topic name; lets tests and tenants share one broker."""
    topic_replication_factor: int = Field(default=1, ge=1)
    """Replicas of each topic `create-topics` makes (3 on a production cluster)."""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How every Kafka client connects (README, Security): SSL / SASL_SSL for TLS."""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    """Used with SASL_PLAINTEXT / SASL_SSL."""
    kafka_sasl_username: str = ""
    """SASL user of every Kafka client."""
    kafka_sasl_password: str = ""
    """SASL password of every Kafka client (a secret)."""
    kafka_ssl_cafile: str = ""
    """CA bundle that signed the brokers' certificates; empty: the system's CAs."""
    kafka_ssl_certfile: str = ""
    """Client certificate (mutual TLS); empty: none."""
    kafka_ssl_keyfile: str = ""
    """Private key of `kafka_ssl_certfile`."""

    # Personalize (the self-hosted engine service by default, AWS when endpoint_url is empty)
    personalize_endpoint_url: str | None = "http://127.0.0.1:8003"
    """Where the Personalize clients send their calls: the engine service; empty means AWS
    Personalize. The api alone takes several engine replicas, comma separated, and spreads
    its calls over them (`mgrecs.api.engine_replicas`)."""
    aws_region: str = "us-east-1"
    """Region the Personalize and S3 clients sign for."""
    aws_access_key_id: str = "mgrecs"
    """Key id the clients sign with (one of the engine's `engine_credentials` when self-hosted)."""
    aws_secret_access_key: str = "mgrecs-local-secret"
    """Secret the clients sign with."""
    tracking_id: str = "mgrecs-tracking"
    """The Personalize event tracker PutEvents names."""
    user_campaign_arn: str = "arn:aws:personalize:us-east-1:000000000000:campaign/mgrecs-user"
    """The user-personalization campaign (GetRecommendations by user)."""
    similar_campaign_arn: str = "arn:aws:personalize:us-east-1:000000000000:campaign/mgrecs-similar"
    """The similar-items campaign (GetRecommendations by item)."""
    ranking_campaign_arn: str = "arn:aws:personalize:us-east-1:000000000000:campaign/mgrecs-ranking"
    """The personalized-ranking campaign (GetPersonalizedRanking)."""
    category_filter_arn: str = "arn:aws:personalize:us-east-1:000000000000:filter/mgrecs-category"
    """The filter the API's `category` parameter uses, with its values as `$CATEGORY`."""
    exclude_purchased_filter_arn: str = ""
    """AWS mode: the filter AWS Personalize leaves out what the customer bought with
    (`mgrecs aws provision` creates it); with `exclude_purchased`, the user-personalization
    batch inference job uses it. Empty: the batch jobs get no filter."""

    # AWS mode (docs/aws.md): the batch jobs drive AWS Personalize (dataset imports,
    # solution versions, batch inference jobs) instead of training and scoring themselves.
    batch_mode: Literal["self-hosted", "aws"] = "self-hosted"
    """`aws`: the batch jobs drive AWS Personalize instead of training and scoring themselves."""
    personalize_control_endpoint_url: str | None = None
    """The Personalize control plane (a fake in tests); empty means AWS."""
    personalize_role_arn: str = ""
    """The IAM role Personalize assumes to read and write the artifact store's bucket
    (`mgrecs aws provision` creates it, or adopts this one)."""
    personalize_dataset_group_arn: str = ""
    """The dataset group the solutions train on (checked on every solution version)."""
    personalize_interactions_dataset_arn: str = ""
    """AWS mode: where the exported interactions are imported."""
    personalize_items_dataset_arn: str = ""
    """AWS mode: where the exported items are imported."""
    personalize_users_dataset_arn: str = ""
    """AWS mode: where the exported users are imported."""
    personalize_user_solution_arn: str = ""
    """A user-personalization solution: its versions fill `offline_user_recommendations`."""
    personalize_similar_solution_arn: str = ""
    """A similar-items solution: its versions fill `offline_similar_items`."""
    personalize_ranking_solution_arn: str = ""
    """A personalized-ranking solution: its versions serve `ranking_campaign_arn`."""
    personalize_poll_seconds: float = 30.0
    """First wait between two Describe calls; it doubles up to `personalize_poll_max_seconds`."""
    personalize_poll_max_seconds: float = 300.0
    """Longest wait between two Describe calls of a Personalize job."""
    personalize_job_timeout_hours: float = 24.0
    """An import, training or batch job not done after this long fails the job."""

    # Service listeners
    host: str = "127.0.0.1"
    """Address the HTTP services listen on."""
    ingest_port: int = 8001
    """Port of `mgrecs-ingest`."""
    api_port: int = 8002
    """Port of `mgrecs-api`."""
    engine_port: int = 8003
    """Port of `mgrecs-engine`."""
    tracker_metrics_port: int = 9101
    """Where `mgrecs-tracker` serves `/metrics`, `/healthz` and `/readyz`."""
    tracker_nice: int = 0
    """Added to the tracker process's CPU niceness (0-19): run the events sink with, say, 10
    so that on shared cores the database sink goes first and PutEvents uses what is left."""
    tracker_db_consumers: int = Field(default=3, ge=1, le=64)
    """Consumers of the database sink in one tracker process (members of its group, each
    with its own partitions and connection): while one waits on PostgreSQL another writes,
    so the server's work runs on more than one core."""
    events_bulk: bool = True
    """With the self-hosted engine (`personalize_endpoint_url` set): the events sink sends
    each batch's events in a few signed bulk requests to the engine's `/events/bulk`, not one
    PutEvents call per customer and ten events; off, it sends PutEvents calls only (what AWS
    takes, and any target that speaks PutEvents alone)."""
    events_max_attempts: int = 5
    """PutEvents attempts for one call while the target is up; then `orders.events.dlq`."""
    events_breaker_failures: int = 5
    """Consecutive PutEvents failures that open the circuit (the target is taken as down:
    calls wait, spending no attempts, and a probe is sent after `events_breaker_seconds`)."""
    events_breaker_seconds: float = 2.0
    """First open period; it doubles while probes fail, up to 10 s."""
    batch_metrics_port: int = 9102
    """Where `mgrecs-batch` serves `/metrics`, `/healthz` and `/readyz`."""
    scheduler_metrics_port: int = 9104
    """Where `mgrecs-scheduler` serves `/metrics`, `/healthz` and `/readyz`."""

    # Engine service: which keys it accepts (comma-separated "key:secret" pairs)
    engine_credentials: str = "mgrecs:mgrecs-local-secret"
    """`key:secret` pairs the engine accepts in SigV4 signatures, comma separated."""
    engine_model_poll_seconds: float = 5.0
    """How often the engine looks for a newly promoted model version."""
    engine_events_retention_days: int = Field(default=14, ge=1)
    """How long topic `engine-events` keeps what PutEvents accepted (set when the topic is
    created): longer than the time between retrains, since a restarted engine reads it back
    from the served model's training on."""
    engine_publish_timeout_seconds: float = Field(default=5.0, gt=0)
    """How long PutEvents waits for the broker to take its events before answering 503
    (the tracker then sends them again)."""
    engine_filters: dict[str, str] = {
        "mgrecs-category": "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
    }
    """The engine's filters, a JSON object of name -> Personalize filter expression, each
    served under the ARN `filter_arn_prefix` + name. Setting it replaces the default: keep
    `mgrecs-category` for the API's `category`."""
    filter_arn_prefix: str = "arn:aws:personalize:us-east-1:000000000000:filter/"
    """A filter's ARN is this prefix followed by its name."""
    exclude_purchased: bool = True
    """Leave out what the customer bought, in the cache and in requests without a filter (a
    request's filter decides for itself: docs/api.md, Filters and promotions)."""

    # Batch and API behaviour
    artifact_dir: str = ".run/artifacts"
    """Where trained models are written."""
    artifact_store_url: str = ""
    """Where retrains export their datasets: `file:///path`, a plain path, or
    `s3://bucket/prefix` (through aioboto3); empty means `artifact_dir`."""
    s3_endpoint_url: str | None = None
    """An S3-compatible endpoint (MinIO, a moto server); empty means AWS S3."""
    drift_min_lines: int = 200
    """Recent order lines needed before drift is judged (fewer: no verdict)."""
    drift_max_unseen_share: float = 0.3
    """Share of recent order lines by customers, or of products, the model never saw."""
    drift_max_popularity_shift: float = 0.4
    """Total variation distance between recent and training product shares (0 to 1)."""
    drift_max_ndcg_drop: float = 0.2
    """Relative drop of the active version's validation NDCG@10 from its predecessors'."""
    drift_retrain: bool = False
    """Publish a retrain tick when drift is flagged."""
    attribution_window_days: float = Field(default=7.0, gt=0, le=90)
    """An order line counts as recommendation-influenced when its customer was served its
    product this many days before ordering, or less (docs/concepts.md, Impact)."""
    impact_holdout_arm: str = "holdout"
    """The experiment arm the impact report compares the other arms with (when an experiment
    has an arm of this name)."""
    online_alert_share: float = Field(default=0.8, gt=0, le=1)
    """Alert when the active version's online NDCG@10 falls below this share of the previous
    version's."""
    online_min_customers: int = Field(default=50, ge=1)
    """Served customers who bought since needed before online accuracy is judged."""
    auto_rollback: bool = False
    """Roll back to the previous version (and refill the cache) when the online alert fires."""
    recommendations_per_user: int = 25
    """Length of a customer's cached list."""
    similar_per_product: int = 20
    """Length of a product's cached similar items."""
    active_days: int = 90
    """A customer is active with an order in this many days."""
    region_sample_size: int = Field(default=50, ge=1)
    """The region page's sample when the request names no `sample_size`."""
    region_max_sample_size: int = Field(default=1000, ge=1)
    """The largest `sample_size` a region request may ask for (more: 422)."""
    region_window_hours: int = 6
    """How long the region page's sample stays fixed."""
    new_items_share: float = Field(default=0.1, ge=0.0, le=1.0)
    """Share of the slots of a customer's list (and of a product's similar items) given to
    products launched since the last retrain (docs/concepts.md, New products): "new in your
    categories", reason `new in <category>`. 0 turns the slot off."""
    new_items_days: int = Field(default=30, ge=1)
    """Before the first retrain, a product launched within this many days counts as new."""
    new_items_refresh_seconds: float = Field(default=2.0, gt=0, le=60)
    """How often an API process reads the new products again (kept in memory, so that a
    customer's list costs no query for them): a launch or a retrain shows within this."""
    visitor_trending_share: float = Field(default=0.3, ge=0.0, le=1.0)
    """Share of a visitor's list (`/v1/visitors/recommendations`) given to products trending
    in the region; the rest is its most popular products."""
    max_request_orders: int = 1000
    """Orders one `POST /v1/orders` may carry; more is a 422."""
    max_request_products: int = 1000
    """Catalogue records one `POST /v1/products` may carry; more is a 422."""

    # Ingest push endpoint (docs/api.md, Ingest API)
    ingest_api_keys: str = ""
    """Comma-separated keys `POST /v1/orders` accepts (`X-API-Key` or `Authorization: Bearer`);
    empty leaves the endpoint open, which only `env=development` allows."""
    max_request_bytes: int = 5 * 1024 * 1024
    """Largest request body the api, ingest and engine read; a larger one is a 413 (5 MiB)."""

    # Recommendations API safety (docs/api.md, Keys, rate limits and CORS)
    api_read_keys: str = ""
    """Comma-separated keys the `/v1/` read endpoints and feedback require; empty leaves them
    open, which only `env=development` allows (README, Security)."""
    api_admin_keys: str = ""
    """Comma-separated keys of `/v1/admin/` and `/v1/status`; empty disables them (403)."""
    api_rate_limit_per_second: float = 0.0
    """Requests per second per key (per client IP while reads are open), bursts up to one
    second's worth; over it a 429 with Retry-After. In memory, per API instance; 0: no limit."""
    api_cors_origins: str = ""
    """Comma-separated browser origins allowed to call the API (CORS); empty allows none."""
    max_feedback_events: int = Field(default=500, ge=1)
    """Events one `POST /v1/feedback` may carry; more is a 422."""
    experiments: list[Experiment] = []
    """A/B splits of customers between model versions, as JSON (docs/concepts.md, Feedback
    and experiments): `[{"id": "...", "arms": [{"name": "...", "model_version": "...",
    "share": 0.5}, ...]}]`; the first one serves."""

    @field_validator("experiments")
    @classmethod
    def _distinct_experiments(cls, experiments: list[Experiment]) -> list[Experiment]:
        ids = [experiment.id for experiment in experiments]
        if len(set(ids)) != len(ids):
            raise ValueError("experiment ids must be distinct")
        return experiments

    api_pool_size: int = Field(default=10, ge=1, le=100)
    """Connections to PostgreSQL per api process (per uvicorn worker), opened and readied
    (the hot statements prepared) at start and kept: no request pays for opening one. Its
    sessions run with PostgreSQL's JIT off: the api's statements are short, and the server
    compiled the ones it estimates costly on every run (the new-products read, every 2 s:
    13 ms with JIT, 0.8 ms without). PostgreSQL's `max_connections` must hold every
    replica's (docs/operations.md, Scale)."""
    api_workers: int = 1
    """uvicorn worker processes of `mgrecs-api` (one per core is the usual choice); each
    keeps its own answer cache and rate-limit buckets."""
    served_recording: bool = True
    """The api records what it answered on topic `served` (docs/concepts.md, Impact): off, it
    records nothing (attribution and online accuracy then have nothing to measure)."""
    served_queue_size: int = Field(default=10_000, ge=1)
    """Answers an api process holds while the broker takes the previous batch; past it, an
    answer is not recorded (`mgrecs_served_dropped_total{reason="queue_full"}`), never
    waited for."""
    served_batch_size: int = Field(default=100, ge=1, le=10_000)
    """At most this many answers per batch sent to `served`. A batch is built 4 answers at a
    time between requests (about 0.05 ms each slice) and handed over as one record batch
    per partition, so its size bounds only that last step (some 0.15 ms for 50)."""
    served_batch_seconds: float = Field(default=0.05, gt=0, le=10)
    """A batch leaves when it is full or this long after its first answer. Each batch is one
    produce request, whose fixed cost (the producer's and the broker's) was most of the
    recording's CPU at 0.01 s and 1,000 answers/s (100 requests a second: bench/RESULTS.md,
    issue 20)."""
    served_retention_days: int = Field(default=90, ge=1)
    """Days of `served` the tracker's served sink keeps in PostgreSQL: older day partitions
    are dropped at its start and every hour after (attribution looks back at most this
    far)."""
    api_answer_cache_seconds: float = 5.0
    """How long an API process reuses an answer that is fixed by design (the region page for
    a region, its parameters, window and cache generation) before computing it again; 0 turns
    the in-process answer cache off. A new cache generation is seen within a second."""
    rules_refresh_seconds: float = Field(default=2.0, gt=0, le=10)
    """How often an API process reads the business rules again (docs/concepts.md,
    Merchandising): a created, changed or disabled rule shows in every list it serves
    within this (plus the answer cache's seconds for the region page at most)."""
    rules_catalogue_refresh_seconds: float = Field(default=60.0, gt=0)
    """How often the API resolves the rules' targets against the catalogue again even when
    no rule changed (a product out of stock, a new product of a filtered category), and how
    long it keeps a product's name for the reasons it serves before reading it again in the
    background (a rename shows within this and about a second)."""
    rules_extra_candidates: float = Field(default=1.0, ge=0, le=10)
    """While a filter or a boost is in force, a list of N asks its source (the engine, the
    popular products) for N x (1 + this) candidates, so that filters do not shorten it."""
    margin_weight: float = Field(default=0.0, ge=0, le=1)
    """How much the products' expected margin (price - cost) weighs against relevance in
    every list the API serves (docs/concepts.md, Merchandising): 0 relevance only, 1 by
    margin alone. `mgrecs evaluate --objective margin` shows what each weight costs in
    NDCG@10 and brings in margin; above 0, lists ask for candidates as a filter does."""

    train_recipes: str = "rp3beta,ease,als,itemknn"
    """User-personalization recipes a retrain compares on the latest purchases, comma
    separated (docs/recipes.md, Which recipe serves)."""
    train_budget_seconds: float = 60.0
    """Seconds the retrain's tuning of those recipes may take."""
    promotion_margin: float = Field(default=0.02, ge=0, le=1)
    """Share by which a new version's validation NDCG@10 must beat the active version's,
    measured on the same recent purchases, to replace it (docs/concepts.md, Which model
    serves; AWS mode: Personalize's solution metrics). 0.02: one seed's figure moves by about
    2.5 % by chance (bench/RESULTS.md), so a smaller gain is noise and not worth a new
    cache. Waived for the active recipe with its parameters (a refresh: newer data)."""

    # Scheduler (`mgrecs-scheduler`): when each tick is published, as 5-field cron
    # expressions in UTC; an empty one disables that tick.
    schedule_retrain: str = "0 3 * * 0"
    """The full retrain: recipe search, fit, gate (Sundays 03:00)."""
    schedule_refresh: str = "0 4 * * *"
    """New customers, products and purchases folded in with the active recipe (daily)."""
    schedule_infer: str = "0 */6 * * *"
    """The cache tables refilled from the active model (every 6 hours)."""
    schedule_online: str = "30 5 * * *"
    """The active version's online accuracy scored and stored for the day, with its alert
    and `auto_rollback` (daily 05:30; each cache fill's drift check scores it too)."""

    # Cache generations (docs/concepts.md, The cache): an infer run is split into shards that
    # any batch worker takes; the new generation serves once every shard is written.
    infer_shards: int = Field(default=4, ge=1)
    """Shards of an infer run (tasks on `infer-shards`, taken by any batch worker)."""
    infer_timeout_hours: float = 6.0
    """A generation still building after this long is failed (the previous one serves)."""
    cache_ttl_hours: float = 6.0
    """A generation this old is stale: the API still serves it, marked stale, preferring the
    engine in real time where it has one; 0 never."""
    cache_keep_generations: int = Field(default=2, ge=1)
    """Generations whose rows are kept: the current one and the ones before it."""
    infer_shard_pause_seconds: float = 0.0
    """For tests and failure drills only: a pause before each shard is written."""

    # Customer identities (docs/concepts.md, Customer identities): off unless
    # unify_customers is set.
    unify_customers: bool = False
    """Standardize customer ids (and merge by contact details) in ingest and backfill."""
    customer_id_prefixes: str = ""
    """Comma-separated known prefixes to strip, e.g. "CUST-,C"."""
    customer_id_case_fold: bool = True
    """Case-fold customer ids when unifying them."""
    customer_id_strip_leading_zeros: bool = True
    """Strip leading zeros of all-digit customer ids when unifying them."""
    merge_customers_by: str = ""
    """Comma-separated: "email", "phone" or both; empty merges nothing."""
    phone_default_region: str = ""
    """Region of numbers written without a country code, e.g. "GB"."""
    email_gmail_canonical: bool = False
    """Ignore dots and `+tag` in Gmail addresses when merging by e-mail."""
    max_bad_record_rate: float = 0.05
    """Share of bad order lines (missing ids, duplicates, outliers) above which a retrain
    stops instead of feeding a model, and a backfill exits 1 (docs/concepts.md, Data
    quality)."""

    # Pull connector: polls the company's order API (docs/connector.md)
    connector_source: str = "company-api"
    """Name of the upstream source; keys its watermark in `ingest_watermarks`."""
    connector_base_url: str = "http://127.0.0.1:8010"
    """The company's order API."""
    connector_auth: Literal["bearer", "api-key", "none"] = "bearer"
    """`bearer` (Authorization header), `api-key` (`connector_api_key_header`) or `none`."""
    connector_token: str = ""
    """The token or key the company API takes (a secret)."""
    connector_api_key_header: str = "X-API-Key"
    """The header that carries the key with `connector_auth=api-key`."""
    connector_pagination: Literal["cursor", "page"] = "cursor"
    """`cursor` follows the API's keyset cursor; `page` asks for numbered pages."""
    connector_page_size: int = 100
    """Records asked for per page."""
    connector_poll_seconds: float = 60.0
    """Interval between the passes of `mgrecs-connector` (and `mgrecs sync --follow`)."""
    connector_requests_per_second: float = 5.0
    """Request rate towards the company API; 0: unlimited."""
    connector_timeout_seconds: float = 10.0
    """Timeout of one request to the company API."""
    connector_max_attempts: int = 8
    """Tries per request (timeouts, 5xx, 429) before the API counts as down."""
    connector_backoff_seconds: float = 0.5
    """First wait between tries (exponential backoff with jitter)."""
    connector_backoff_max_seconds: float = 30.0
    """Longest wait between tries."""
    connector_mapping_file: str = "deploy/company-api-mapping.json"
    """The field mapping from the company's records to `OrderEvent` (JSON)."""
    connector_metrics_port: int = 9103
    """Where `mgrecs-connector` (and `mgrecs sync --follow`) serves /metrics, /healthz and
    /readyz."""
    connector_lock_retry_seconds: float = 5.0
    """How often a standby connector tries to take the puller lock, and the leader checks
    that its lock connection still answers (docs/connector.md, One puller)."""

    # Cost (docs/cost.md): what each mode consumes, and AWS's list prices to turn it into a
    # bill. The defaults are Amazon Personalize's and S3's published us-east-1 list prices as
    # known on `price_date`: check them against https://aws.amazon.com/personalize/pricing/.
    usage_flush_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How often each service adds its usage counts to `usage_hourly` (a crash loses at most
    this long's counts)."""
    price_date: str = "2026-12-07"
    """The day the price defaults below were taken (shown beside every estimate)."""
    price_ingest_per_gb: float = Field(default=0.05, ge=0)
    """USD per GB ingested by Personalize (PutEvents and dataset imports)."""
    price_training_hour: float = Field(default=0.24, ge=0)
    """USD per training hour (4 vCPU, 8 GiB)."""
    price_tps_hour_tiers: str = "20000:0.2,200000:0.1,inf:0.05"
    """USD per TPS-hour of real-time recommendations, tiered by the month's TPS-hours:
    `up_to:price,...` (the first 20,000 at 0.20, up to 200,000 at 0.10, beyond at 0.05)."""
    price_batch_per_1000_tiers: str = "20000000:0.067,200000000:0.058,inf:0.05"
    """USD per 1,000 batch recommendations (one per input user or item), tiered by the
    month's count: `up_to:price,...`."""
    price_s3_gb_month: float = Field(default=0.023, ge=0)
    """USD per GB-month of S3 Standard; each byte written is counted as stored a month."""
    price_min_provisioned_tps: float = Field(default=1.0, ge=1)
    """Each campaign's minProvisionedTPS: an hour bills the greater of it and the hour's
    busiest 5-minute average."""
    price_event_bytes: int = Field(default=260, ge=1)
    """Bytes one PutEvents event weighs when ingested (the tracker's events average ~260)."""

    @field_validator("price_tps_hour_tiers", "price_batch_per_1000_tiers")
    @classmethod
    def _tiers(cls, value: str) -> str:
        """A malformed tier table stops the service at start, not the report later."""
        from mgrecs.common.prices import parse_tiers  # prices reads these settings

        parse_tiers(value)
        return value

    machine_hour_price: float = Field(default=0.096, ge=0)
    """Self-hosted mode: USD per hour of the machine(s) mgrecs runs on (default: one
    2-vCPU, 8-GiB on-demand instance, m6i.large in us-east-1), set to what yours cost."""
    daily_budget: float = Field(default=0.0, ge=0)
    """USD: a day's estimated AWS bill above it raises the CostOverBudget alert and logs a
    warning; 0: off."""

    log_level: str = "INFO"
    """Level of the structured logs."""
    log_json: bool = True
    """JSON lines on stderr; false: console output."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
