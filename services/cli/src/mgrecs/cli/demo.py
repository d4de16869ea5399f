"""`mgrecs demo` / `mgrecs smoke`: the whole pipeline on one machine, nothing to install.

Starts the embedded PostgreSQL and broker, every service as its own process, serves the sample
data from the fake company API (its own process) and brings it in with the pull connector
(`mgrecs-connector`), trains and fills the cache with ticks, then either waits for Ctrl-C
(demo) or checks the region endpoint and exits (smoke).
"""

import asyncio
import functools
import secrets
import shlex
import shutil
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console

from mgrecs.cli.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.cli.upstream import SOURCE, Spec, upstream_env, upstream_settings, upstream_specs
from mgrecs.common.db import create_pool
from mgrecs.common.kafka import ensure_topics
from mgrecs.common.personalize import signed_headers
from mgrecs.common.settings import Settings
from mgrecs.ingest.public import generate
from mgrecs.store import cache, customers, jobs, order_reads, products, reports
from mgrecs.store.identities import count_aliases_like
from mgrecs.store.schema import migrate
from mgrecs.store.watermarks import load_watermark

RUN_DIR = Path(".run")
"""Where a run keeps its database, logs and models (wiped when the next run starts)."""
console = Console()
T = TypeVar("T")
DEMO_ACCESS_KEY = "mgrecs-demo"


class SmokeFailure(Exception):
    """The pipeline ran but its answer is wrong or missing."""


@dataclass
class DemoOptions:
    customers: int
    products: int
    orders: int
    seed: int
    wait: bool
    run_dir: Path = RUN_DIR


def _port(preferred: int) -> int:
    """The preferred port when it is free, otherwise any free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


class StoreReader:
    """The run's reads of the store, on one pool of one connection (the store's JSON codecs)
    that lives on an event loop of its own across the synchronous steps of the run."""

    def __init__(self, dsn: str) -> None:
        self._runner = asyncio.Runner()
        self._pool = self._runner.run(create_pool(dsn, min_size=1, max_size=1))

    def read(self, read: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """What the store function `read` returns, called with the pool and `args`."""
        return self._runner.run(read(self._pool, *args))

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.run(self._pool.close())
        self._runner.close()


def _wait_until(what: str, check: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    with console.status(what):
        while not check():
            if time.monotonic() > deadline:
                raise SmokeFailure(f"timed out after {timeout:.0f}s: {what}")
            time.sleep(0.5)
    console.print(f"[green]✓[/green] {what}")


def _service_env(settings: Settings, run_dir: Path) -> dict[str, str]:
    return {
        "MGRECS_DATABASE_URL": settings.database_url,
        "MGRECS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MGRECS_INGEST_PORT": str(settings.ingest_port),
        "MGRECS_API_PORT": str(settings.api_port),
        "MGRECS_ENGINE_PORT": str(settings.engine_port),
        "MGRECS_PERSONALIZE_ENDPOINT_URL": f"http://127.0.0.1:{settings.engine_port}",
        "MGRECS_TRACKER_METRICS_PORT": str(settings.tracker_metrics_port),
        "MGRECS_BATCH_METRICS_PORT": str(settings.batch_metrics_port),
        "MGRECS_ARTIFACT_DIR": str((run_dir / "artifacts").resolve()),
        "MGRECS_ENGINE_MODEL_POLL_SECONDS": "1",
        **upstream_env(settings),
        "MGRECS_INGEST_API_KEYS": settings.ingest_api_keys,
        "MGRECS_API_ADMIN_KEYS": settings.api_admin_keys,
        "MGRECS_AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
        "MGRECS_AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key,
        "MGRECS_ENGINE_CREDENTIALS": settings.engine_credentials,
        "MGRECS_ENV": settings.env,  # reads open on this machine (README, Security)
    }


def run_demo(options: DemoOptions) -> int:
    """Run the pipeline; returns the process exit code."""
    run_dir = options.run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    postgres = EmbeddedPostgres((run_dir / "pg").resolve())
    broker = EmbeddedBroker(log_path=run_dir / "broker.log")
    services: list[ServiceProcess] = []
    try:
        with console.status("starting embedded PostgreSQL and Kafka-protocol broker"):
            postgres.start()
            broker.start()
        engine_secret = secrets.token_urlsafe(24)
        settings = Settings(
            database_url=postgres.url,
            kafka_bootstrap=broker.bootstrap,
            ingest_port=_port(8001),
            api_port=_port(8002),
            engine_port=_port(8003),
            tracker_metrics_port=_port(9101),
            batch_metrics_port=_port(9102),
            **upstream_settings(_port(8010), _port(9103)),
            ingest_api_keys=secrets.token_urlsafe(24),  # keys of this run only
            api_admin_keys=secrets.token_urlsafe(24),
            aws_access_key_id=DEMO_ACCESS_KEY,  # the engine's key, with a secret of this run
            aws_secret_access_key=engine_secret,
            engine_credentials=f"{DEMO_ACCESS_KEY}:{engine_secret}",
            env="development",
        )
        console.print(f"[green]✓[/green] PostgreSQL {postgres.url}  broker {broker.bootstrap}")
        migrate(settings.database_url)
        asyncio.run(ensure_topics(settings))
        console.print("[green]✓[/green] schema migrated, topics created")
        _start_services(settings, services, run_dir)
        with StoreReader(settings.database_url) as store:
            _run_pipeline(settings, options, services, store)
        if options.wait:
            _print_usage(settings, run_dir)
            _wait_for_interrupt(services)
        else:
            check_regions(settings)
            console.print("[bold green]smoke passed[/bold green]")
        return 0
    except (SmokeFailure, RuntimeError, TimeoutError) as error:
        console.print(f"[bold red]failed:[/bold red] {error}")
        for service in services:
            console.print(f"[dim]--- {service.name} log ({service.log_path}) ---[/dim]")
            console.print(service.log_tail(15), markup=False, highlight=False)
        return 1
    finally:
        with console.status("stopping services"):
            stop_all(services)
            broker.stop()
            postgres.stop()


def _start_services(settings: Settings, services: list[ServiceProcess], run_dir: Path) -> None:
    """Start the platform's services, appending each to `services` (so a failure stops it)."""
    _start(
        settings,
        services,
        [
            Spec("engine", ["mgrecs-engine"], f"http://127.0.0.1:{settings.engine_port}/healthz"),
            Spec("ingest", ["mgrecs-ingest"], f"http://127.0.0.1:{settings.ingest_port}/healthz"),
            Spec("api", ["mgrecs-api"], f"http://127.0.0.1:{settings.api_port}/healthz"),
            Spec(
                "tracker",
                ["mgrecs-tracker"],
                f"http://127.0.0.1:{settings.tracker_metrics_port}/healthz",
            ),
            Spec(
                "batch", ["mgrecs-batch"], f"http://127.0.0.1:{settings.batch_metrics_port}/healthz"
            ),
        ],
        run_dir,
    )


def _start(
    settings: Settings, services: list[ServiceProcess], specs: list[Spec], run_dir: Path
) -> None:
    env = _service_env(settings, run_dir)
    started = []
    for spec in specs:
        service = ServiceProcess(
            spec.name, spec.command, env, run_dir / "logs" / f"{spec.name}.log"
        )
        service.start()
        services.append(service)
        started.append(service)
    for service, spec in zip(started, specs, strict=True):
        wait_healthy(spec.health, service)
        console.print(f"[green]✓[/green] {service.name} up (log: {service.log_path})")


def _run_pipeline(
    settings: Settings, options: DemoOptions, services: list[ServiceProcess], store: StoreReader
) -> None:
    anchor = datetime.now(UTC)
    data = generate(
        seed=options.seed,
        customers=options.customers,
        products=options.products,
        orders=options.orders,
        anchor=anchor,
    )
    lines = sum(len(order.lines) for order in data.orders)
    counts = (options.seed, options.customers, options.products, options.orders)
    for spec in upstream_specs(settings, *counts, anchor):  # the API first, then its reader
        _start(settings, services, [spec], options.run_dir)
    console.print(
        f"[green]✓[/green] company API serves {len(data.orders)} orders ({lines} lines) at "
        f"{settings.connector_base_url}; the connector pulls them"
    )

    _wait_until(
        f"tracker wrote {lines} order lines to PostgreSQL",
        lambda: store.read(order_reads.count_lines) == lines,
    )
    _check_connector(store, lines)
    _wait_until(
        f"tracker wrote the catalogue's {len(data.catalogue)} products "
        f"({len(data.unsold)} never sold)",
        lambda: store.read(products.count_catalogue) == len(data.catalogue),
    )
    _wait_until(
        f"engine received {lines} purchase events",
        lambda: engine_stats(settings)["events_received"] == lines,
    )

    from mgrecs.common.channels import publish_tick

    for kind in ("retrain", "infer"):
        sent = asyncio.run(publish_tick(settings, kind))
        _wait_until(f"batch finished {kind}", functools.partial(_tick_done, store, sent.tick_id))
    users, similar = store.read(cache.current_rows)
    if not users or not similar:
        raise SmokeFailure(f"cache is empty after infer ({users} users, {similar} products)")
    console.print(f"[green]✓[/green] cache: {users} customers, {similar} products")


def engine_stats(settings: Settings) -> dict[str, Any]:
    """The engine's `/stats`, asked with a signed request (it needs the engine's key)."""
    url = f"http://127.0.0.1:{settings.engine_port}/stats"
    stats: dict[str, Any] = httpx.get(url, headers=signed_headers(settings, "GET", url)).json()
    return stats


def _check_connector(store: StoreReader, lines: int) -> None:
    """The connector's first sync read every line, passed data quality, left a watermark, and
    unified the legacy customer ids (no CUST-... customer in PostgreSQL)."""
    source = f"connector:{SOURCE}"
    report = store.read(reports.first_report, source)
    if report is None:
        raise SmokeFailure(f"no data-quality report of {source}")
    if not report.passed or report.lines != lines:
        raise SmokeFailure(f"sync report: {report.lines}/{lines} lines, {report.reason}")
    if store.read(load_watermark, SOURCE) is None:
        raise SmokeFailure(f"no watermark for {SOURCE}")
    legacy = store.read(count_aliases_like, "CUST-%")
    leaked = store.read(customers.count_customers_like, "CUST-%")
    if not legacy or leaked:
        raise SmokeFailure(f"unification: {legacy} legacy ids known, {leaked} left as customers")
    console.print(
        f"[green]✓[/green] connector: data quality passed on {report.lines} lines "
        f"({report.reason}); {legacy} legacy customer ids (CUST-…) merged by e-mail"
    )


def _tick_done(store: StoreReader, tick_id: str) -> bool:
    """True once the batch service finished the tick; a failed job stops the run."""
    outcome = store.read(jobs.outcome, tick_id)
    if outcome is None:
        return False
    if outcome.get("status") == "failed":
        raise SmokeFailure(f"batch job failed: {outcome.get('error')}")
    return True


def check_regions(settings: Settings) -> None:
    """The region endpoint must answer every region with plausible, consistent figures."""
    with StoreReader(settings.database_url) as store:
        regions = store.read(customers.regions)
    api = f"http://127.0.0.1:{settings.api_port}"
    for region in regions:
        response = httpx.get(f"{api}/v1/regions/{region}/recommendations", timeout=10)
        if response.status_code != 200:
            raise SmokeFailure(f"region {region}: HTTP {response.status_code} {response.text}")
        body = response.json()
        items = body["items"]
        if not items or not 0 < body["sample_size"] <= settings.region_sample_size:
            raise SmokeFailure(f"region {region}: empty answer {body}")
        rates = [item["match_rate"] for item in items]
        if rates != sorted(rates, reverse=True):
            raise SmokeFailure(f"region {region}: not sorted by match rate: {rates}")
        for item in items:
            expected = (
                "High"
                if item["match_rate"] >= 80
                else "Medium"
                if item["match_rate"] >= 40
                else "Low"
            )
            if not (
                0 < item["match_rate"] <= 100
                and 0 <= item["mean_score"] <= 1
                and item["affinity"] == expected
            ):
                raise SmokeFailure(f"region {region}: implausible item {item}")
        top = items[0]
        console.print(
            f"[green]✓[/green] region {region}: {len(items)} products, "
            f"top {top['product_id']} match {top['match_rate']}% ({top['affinity']})"
        )
    url = f"{api}/v1/regions/{regions[0]}/recommendations"
    if httpx.get(url, timeout=10).json() != httpx.get(url, timeout=10).json():
        raise SmokeFailure("two calls in one window gave different answers")


def _print_usage(settings: Settings, run_dir: Path) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    company = settings.connector_base_url
    dsn = shlex.quote(settings.database_url)
    console.print(f"""
[bold]mgrecs is running.[/bold]
  API         {api}/docs
  dashboard   {api}/dashboard (paste the admin key for models and pipeline health)
  ingest      http://127.0.0.1:{settings.ingest_port}/docs
  engine      http://127.0.0.1:{settings.engine_port}/stats
  tracker     http://127.0.0.1:{settings.tracker_metrics_port}/metrics
  batch       http://127.0.0.1:{settings.batch_metrics_port}/metrics
  admin key   {settings.api_admin_keys} (X-API-Key for /v1/status and /v1/admin/…)
  company API {company}/orders (fake, token {settings.connector_token})
  connector   http://127.0.0.1:{settings.connector_metrics_port}/metrics (mgrecs-connector)
  PostgreSQL  {settings.database_url}
  broker      {settings.kafka_bootstrap}
  logs        {run_dir / "logs"}

Try:
  curl {api}/v1/regions/north/recommendations
  curl {api}/v1/users/C00001/recommendations
  curl {api}/v1/products/P0001/similar
  curl '{api}/v1/products?q=lamp'   # the catalogue, products nobody bought included
  curl -H 'X-API-Key: {settings.api_admin_keys}' {api}/v1/quality/reports
  curl --aws-sigv4 aws:amz:{settings.aws_region}:personalize \\
       --user '{settings.aws_access_key_id}:{settings.aws_secret_access_key}' \\
       http://127.0.0.1:{settings.engine_port}/stats
  curl -H 'Authorization: Bearer {settings.connector_token}' '{company}/orders?per_page=2'
  MGRECS_DATABASE_URL={dsn} .venv/bin/mgrecs quality   # the sync's data-quality report
  curl -H 'X-API-Key: {settings.ingest_api_keys}' -H 'Content-Type: application/json' \\
       -d @orders.json http://127.0.0.1:{settings.ingest_port}/v1/orders

Ctrl-C stops everything.""")


def _wait_for_interrupt(services: list[ServiceProcess]) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM; fail if a service dies meanwhile."""
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    # Set both explicitly: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        dead = [service.name for service in services if not service.alive()]
        if dead:
            raise RuntimeError(f"service(s) exited: {', '.join(dead)}")
        time.sleep(0.5)
    console.print("stopping…")
