"""The fake company API as the demo runs it: its own process serving the sample data set."""

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from mgrecs.cli.embedded import free_port
from mgrecs.cli.upstream import upstream_settings, upstream_specs
from mgrecs.common.settings import Settings
from mgrecs.ingest.fake_company_api import legacy_customer_id, orders_from_sample, parse_args
from mgrecs.ingest.identity import unify
from mgrecs.ingest.identity_rules import IdentityRules, InMemoryResolver
from mgrecs.ingest.mapping import load_mapping, map_record
from mgrecs.ingest.sample_data import generate
from support.paths import REPO_ROOT

MAPPING = load_mapping(REPO_ROOT / "deploy" / "company-api-mapping.json")
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
TOKEN = "entry-token"


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """`python -m mgrecs.ingest.fake_company_api` on a free port; its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "mgrecs.ingest.fake_company_api", "--port", str(port)]
    command += ["--orders", "30", "--customers", "8", "--products", "20", "--seed", "3"]
    command += ["--anchor", ANCHOR.isoformat(), "--token", TOKEN]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "fake company API did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_entry_point_serves_sample_orders_in_pages(served: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = httpx.get(f"{served}/orders", params={"per_page": 20}, headers=auth).json()
    assert len(first["orders"]) == 20 and first["next_cursor"]
    rest = httpx.get(
        f"{served}/orders", params={"per_page": 20, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert len(rest["orders"]) == 10 and rest["next_cursor"] is None
    records = first["orders"] + rest["orders"]
    record = records[0]
    assert set(record) >= {"id", "created_at", "updated_at", "customer", "items"}
    assert record["customer"]["address"]["region"] and record["items"][0]["sku"].startswith("P")
    sample = generate(seed=3, customers=8, products=20, orders=30, anchor=ANCHOR)
    events = [map_record(r, MAPPING) for r in records]
    assert [e.order_id for e in events] == [o.order_id for o in sample.orders]
    assert [e.lines for e in events] == [o.lines for o in sample.orders]


def test_the_entry_point_wants_its_token(served: str) -> None:
    assert httpx.get(f"{served}/orders").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{served}/orders", headers=wrong).status_code == 401


async def test_legacy_customer_ids_unify_back_by_email() -> None:
    sample = generate(seed=5, customers=20, products=30, orders=200, anchor=ANCHOR)
    records = orders_from_sample(sample, legacy_every=5)
    legacy = [r for r in records if r["customer"]["id"].startswith("CUST-")]
    assert legacy, "no legacy ids served"
    resolver = InMemoryResolver(IdentityRules(case_fold=False, merge_by=["email"]))
    unified = [await unify(map_record(r, MAPPING), resolver) for r in records]
    assert [e.customer.customer_id for e in unified] == [
        o.customer.customer_id for o in sample.orders
    ]
    by_id = {e.order_id: e for e in unified}
    for record in legacy:
        event = by_id[record["id"]]
        assert record["customer"]["id"] == legacy_customer_id(event.customer.customer_id)
        assert event.customer.source_customer_id == record["customer"]["id"]


@pytest.mark.parametrize("token", ["-starts-with-a-dash", "--looks-like-a-flag", "plain"])
def test_the_demo_passes_any_generated_token_to_the_fake_api(token: str) -> None:
    """The demo's token is random (`secrets.token_urlsafe`), so it may start with "-": the
    command line the demo builds must still hand it over whole."""
    settings = Settings(**upstream_settings(company_port=8010, metrics_port=9310))
    settings = settings.model_copy(update={"connector_token": token})
    fake_api = next(spec for spec in upstream_specs(settings, 7, 5, 5, 5, ANCHOR))
    assert parse_args(fake_api.command[3:]).token == token
