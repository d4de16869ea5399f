"""The demo's upstream: the fake company API as its own process, and the pull connector
(`mgrecs-connector`) that brings its orders onto `orders` the way production does.
"""

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from mgrecs.common.settings import Settings
from mgrecs.ingest.public import FAKE_COMPANY_API

MAPPING_FILE = Path("deploy/company-api-mapping.json")
SOURCE = "company-api"


class Spec(NamedTuple):
    """A service to start: its name, console script with arguments, and a URL answering 200."""

    name: str
    command: list[str]
    health: str


def upstream_settings(company_port: int, metrics_port: int) -> dict[str, Any]:
    """Connector settings for the demo: a fresh token, big pages, a short poll, and customer-id
    unification that merges by e-mail but keeps the ids as they are (C00001 stays C00001)."""
    mapping = MAPPING_FILE.resolve() if MAPPING_FILE.exists() else MAPPING_FILE
    return {
        "connector_source": SOURCE,
        "connector_base_url": f"http://127.0.0.1:{company_port}",
        "connector_token": secrets.token_urlsafe(16),
        "connector_page_size": 500,
        "connector_poll_seconds": 10.0,
        "connector_requests_per_second": 20.0,
        "connector_mapping_file": str(mapping),
        "connector_metrics_port": metrics_port,
        "unify_customers": True,
        "merge_customers_by": "email",
        "customer_id_case_fold": False,
    }


def upstream_env(settings: Settings) -> dict[str, str]:
    """The MGRECS_* variables behind `upstream_settings`; every service gets them, so every
    way in unifies customer ids alike."""
    return {
        "MGRECS_CONNECTOR_SOURCE": settings.connector_source,
        "MGRECS_CONNECTOR_BASE_URL": settings.connector_base_url,
        "MGRECS_CONNECTOR_TOKEN": settings.connector_token,
        "MGRECS_CONNECTOR_PAGE_SIZE": str(settings.connector_page_size),
        "MGRECS_CONNECTOR_POLL_SECONDS": str(settings.connector_poll_seconds),
        "MGRECS_CONNECTOR_REQUESTS_PER_SECOND": str(settings.connector_requests_per_second),
        "MGRECS_CONNECTOR_MAPPING_FILE": settings.connector_mapping_file,
        "MGRECS_CONNECTOR_METRICS_PORT": str(settings.connector_metrics_port),
        "MGRECS_UNIFY_CUSTOMERS": str(settings.unify_customers).lower(),
        "MGRECS_MERGE_CUSTOMERS_BY": settings.merge_customers_by,
        "MGRECS_CUSTOMER_ID_CASE_FOLD": str(settings.customer_id_case_fold).lower(),
    }


def upstream_specs(
    settings: Settings, seed: int, customers: int, products: int, orders: int, anchor: datetime
) -> list[Spec]:
    """The fake company API serving the sample data set, then the connector following it."""
    port = settings.connector_base_url.rsplit(":", 1)[1]
    fake_api = [
        "python",
        "-m",
        FAKE_COMPANY_API,
        *("--port", port, "--seed", str(seed), "--customers", str(customers)),
        *("--products", str(products), "--orders", str(orders)),
        "--anchor",
        anchor.isoformat(),
        f"--token={settings.connector_token}",  # a random token may start with "-"
    ]
    return [
        Spec("company-api", fake_api, f"{settings.connector_base_url}/healthz"),
        Spec(
            "connector",
            ["mgrecs-connector"],
            f"http://127.0.0.1:{settings.connector_metrics_port}/healthz",
        ),
    ]
