"""docs/operations.md's commands work against the demo stack (`mgrecs demo`, as a user
starts it): every `mgrecs` command, every `curl http://<api>/…` and the `psql` query of the
guide run there and answer what the guide says they answer, and every metric the guide names
is served by a running service.

The guide's docker, kubectl and pg_dump commands need a container engine or a cluster, which
this machine has not: the files they use are validated in deploy/test_deploy.py instead.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mgrecs.cli.demo import check_regions
from mgrecs.common.settings import Settings
from support.deploy_files import COMMAND, GUIDE, REPO_ROOT, code, metrics_in

MGRECS = str(Path(sys.executable).with_name("mgrecs"))
STARTUP_SECONDS = 420
USAGE = re.compile(
    r"^\s{2}(API|PostgreSQL|broker|ingest|connector|tracker|batch|engine|admin key)\s+(\S+)",
    re.M,
)


@dataclass(frozen=True)
class Demo:
    api: str
    database_url: str
    bootstrap: str
    admin_key: str
    metrics_urls: list[str]
    workdir: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MGRECS_DATABASE_URL": self.database_url,
            "MGRECS_KAFKA_BOOTSTRAP": self.bootstrap,
            "COLUMNS": "200",
        }


def _read_usage(process: subprocess.Popen[str], log: Path) -> dict[str, str]:
    """The demo's "mgrecs is running" block (the URLs, the admin key), once it is printed."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Ctrl-C stops everything" in text:
            return dict(USAGE.findall(text.split("mgrecs is running.")[1]))
        if process.poll() is not None:
            break
        time.sleep(1)
    raise AssertionError(f"the demo did not come up:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    log = workdir / "demo.log"
    env = {**os.environ, "COLUMNS": "400"}  # rich wraps at the terminal width otherwise
    with log.open("w") as out:
        process = subprocess.Popen(
            [MGRECS, "demo", "--run-dir", str(workdir / "run")]
            + ["--customers", "300", "--products", "120", "--orders", "2000"],
            cwd=REPO_ROOT,  # as a user runs it: the company API's mapping is deploy/…
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        usage = _read_usage(process, log)
        api = usage["API"].removesuffix("/docs")
        yield Demo(
            api=api,
            database_url=usage["PostgreSQL"],
            bootstrap=usage["broker"],
            admin_key=usage["admin key"],
            metrics_urls=[
                f"{api}/metrics",
                usage["ingest"].removesuffix("/docs") + "/metrics",
                usage["tracker"],
                usage["batch"],
                usage["engine"].removesuffix("/stats") + "/metrics",
                usage["connector"],
            ],
            workdir=workdir,
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def guide_commands() -> set[str]:
    """Each `mgrecs …`, `curl …` and `psql …` command the guide names, as written."""
    text = code(GUIDE.read_text())
    mgrecs = {" ".join(match.group(0).split()) for match in COMMAND.finditer(text)}
    others = {match.strip() for match in re.findall(r"(?:^|`|\n)((?:curl|psql) [^\n`]+)", text)}
    return mgrecs | others


def run(demo: Demo, command: str, **values: str) -> str:
    """Run one of the guide's commands (its placeholders filled in) on the demo; its output."""
    for placeholder, value in values.items():
        command = command.replace(placeholder, value)
    words = shlex.split(command.replace("$MGRECS_DATABASE_URL", demo.database_url))
    if words[0] == "mgrecs":
        words[0] = MGRECS
    if words[0] == "curl":
        words[1:1] = ["--silent", "--show-error", "--fail-with-body"]
    done = subprocess.run(
        words, cwd=demo.workdir, env=demo.env(), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def _sql(demo: Demo, query: str) -> str:
    done = subprocess.run(
        ["psql", demo.database_url, "-At", "-c", query], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _wait_for_tick(demo: Demo, kind: str, after: int) -> None:
    """Until the batch service finished a `kind` tick beyond the first `after` ones."""
    deadline = time.monotonic() + 180
    while int(_sql(demo, TICKS.format(kind))) <= after:
        assert time.monotonic() < deadline, f"no {kind} tick finished"
        time.sleep(1)


ACTIVE = "SELECT version FROM model_versions WHERE active"
NEWEST = "SELECT version FROM model_versions ORDER BY trained_at DESC LIMIT 1"
CACHED_VERSION = "SELECT model_version FROM cache_generations WHERE state = 'current'"
TICKS = "SELECT count(*) FROM processed_ticks WHERE kind = '{}' AND finished_at IS NOT NULL"
LAST_ONLINE = (
    "SELECT (detail ->> 'status') || ' ' || (detail -> 'check' ->> 'model_version')"
    " FROM processed_ticks WHERE kind = 'online' ORDER BY finished_at DESC NULLS LAST LIMIT 1"
)


# About forty commands, each a new `mgrecs` process, and several ticks waited for: on a
# loaded two-core machine that passed the suite's 300 s default once (CI, 2026-12-07).
@pytest.mark.timeout(900)
def test_the_guides_commands_work_against_the_demo_stack(demo: Demo) -> None:
    guide = guide_commands()
    api = demo.api.removeprefix("http://")
    seen: set[str] = set()

    def step(command: str, **values: str) -> str:
        assert command in guide, f"not in the guide any more: {command}"
        seen.add(command)
        return run(demo, command, **values)

    # Empty recommendations, Low match rates, Missing products: the read-only checks.
    assert "current" in step("mgrecs cache status")
    assert json.loads(step("curl http://<api>/readyz", **{"<api>": api}))["status"] == "ok"
    jobs = step("mgrecs jobs")
    assert "retrain" in jobs and "infer" in jobs
    first_version = _sql(demo, ACTIVE)
    assert first_version in step("mgrecs models")
    assert "passed" in step("mgrecs quality")
    regions = json.loads(step("curl http://<api>/v1/regions", **{"<api>": api}))
    assert sum(region["active_customers"] for region in regions["regions"]) > 0
    assert f"model {first_version}: " in step("mgrecs drift")
    onlines = int(_sql(demo, TICKS.format("online")))
    step("mgrecs tick online")  # OnlineAccuracyLow's "measures again"
    _wait_for_tick(demo, "online", onlines)
    assert _sql(demo, LAST_ONLINE) == f"ok {first_version}"
    reports = json.loads(
        step(
            "curl -H 'X-API-Key: <admin key>' http://<api>/v1/quality/reports",
            **{"<admin key>": demo.admin_key, "<api>": api},
        )
    )
    assert reports["items"][0]["report"]["passed"]
    connector = demo.metrics_urls[-1].removeprefix("http://").removesuffix("/metrics")
    ready = json.loads(step("curl http://<connector>/readyz", **{"<connector>": connector}))
    assert ready["checks"] == {"database": "ok", "puller": "ok"}
    watermarks = step(
        'psql "$MGRECS_DATABASE_URL" -c "SELECT source, updated_at, order_id, synced_at FROM '
        'ingest_watermarks"'
    )
    assert "company-api" in watermarks
    similar = json.loads(step("curl http://<api>/v1/products/P0001/similar", **{"<api>": api}))
    assert similar["product_id"] == "P0001" and similar["items"]
    assert "P0001" in step(
        'psql "$MGRECS_DATABASE_URL" -c "SELECT * FROM products WHERE product_id = \'P0001\'"'
    )
    found = json.loads(
        step(
            "curl -H 'X-API-Key: <admin key>' 'http://<api>/v1/products?q=P0001'",
            **{"<admin key>": demo.admin_key, "<api>": api},
        )
    )
    assert found["items"][0]["product_id"] == "P0001"
    versions = step(
        'psql "$MGRECS_DATABASE_URL" -c "SELECT product_id, source_updated_at FROM products '
        "WHERE product_id = 'P0001'\""
    )
    assert "P0001" in versions
    never_sold = _sql(
        demo,
        "SELECT count(*) FROM products p WHERE source_updated_at IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM order_items i WHERE i.product_id = p.product_id)",
    )
    assert int(never_sold) > 0  # the demo's catalogue has products nobody bought
    (demo.workdir / "catalogue.csv").write_text(
        "product_id,name,category,price,cost,brand\n"
        "P9001,Guide Lamp,home-garden,19.90,9.00,Lumo\n"
        "P9002,Guide Mug,household,6.50,2.10,Acme\n"
    )
    assert "products published 2, rejected 0" in step("mgrecs backfill-products catalogue.csv")
    seen.add("mgrecs backfill-products")  # the dead-letter table's mention
    status = step(
        "curl -H 'X-API-Key: <admin key>' http://<api>/v1/status",
        **{"<admin key>": demo.admin_key, "<api>": api},
    )
    assert json.loads(status)["models"][0]["version"] == first_version
    run(demo, "mgrecs sample-data orders.csv --customers 300 --products 120 --seed 9")
    assert "ndcg@10" in step("mgrecs evaluate orders.csv").lower()

    # Deploy and Upgrade: load history, migrations (idempotent), topics, a model rollback.
    step("mgrecs backfill orders.csv")
    seen.add("mgrecs backfill")  # the guide's "`mgrecs backfill` of the corrected lines"
    step("mgrecs migrate")
    step(
        "mgrecs migrate --revision REVISION",
        REVISION=_sql(demo, "SELECT version_num FROM alembic_version"),
    )
    step("mgrecs create-topics")
    retrains, infers = (int(_sql(demo, TICKS.format(kind))) for kind in ("retrain", "infer"))
    step("mgrecs tick retrain")
    _wait_for_tick(demo, "retrain", retrains)
    newest = _sql(demo, NEWEST)
    assert newest != first_version
    assert "infer tick" in step("mgrecs promote VERSION", VERSION=newest)
    assert _sql(demo, ACTIVE) == newest
    assert "infer tick" in step("mgrecs rollback")
    assert _sql(demo, ACTIVE) == first_version
    _wait_for_tick(demo, "infer", infers + 1)  # the promote's infer and the rollback's
    assert _sql(demo, CACHED_VERSION) == first_version
    step("mgrecs tick infer")
    _wait_for_tick(demo, "infer", infers + 2)
    step("mgrecs cache invalidate --all --refresh")
    _wait_for_tick(demo, "infer", infers + 3)
    assert "current" in step("mgrecs cache status")

    # Merchandising rules: a filter added, listed, disabled.
    added = step("mgrecs rules add filter --out-of-stock --by ops")
    rule_id = re.search(r"rule (\d+) created", added)
    assert rule_id is not None, added
    assert "filter" in step("mgrecs rules list")
    assert f"rule {rule_id.group(1)} disabled" in step(
        "mgrecs rules disable ID", ID=rule_id.group(1)
    )

    # What it costs: the demo's services have metered their CPU seconds by now.
    assert "prices as of" in step("mgrecs cost")
    # AWS mode's commands need an AWS account: tests/batch/test_aws_provision.py runs them
    # against the fake control plane.
    seen.update({"mgrecs aws provision", "mgrecs aws provision --dry-run"})

    assert seen == guide, f"the guide's commands this test does not run: {guide - seen}"


def test_the_demo_answers_every_region_as_the_smoke_run_checks(demo: Demo) -> None:
    """`make smoke`'s check of the region page (every region answers, sorted by match rate,
    affinities and scores consistent, the same answer twice in a window), on this stack."""
    port = int(demo.api.rsplit(":", 1)[1])
    check_regions(Settings(database_url=demo.database_url, api_port=port))


def test_the_metrics_the_guide_names_are_served(demo: Demo) -> None:
    served: set[str] = set()
    for url in demo.metrics_urls:
        for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
            served.add(family.name)
            if family.type == "counter":  # listed, with no sample yet, under its base name
                served.add(f"{family.name}_total")
            served |= {sample.name for sample in family.samples}
    named = metrics_in(GUIDE.read_text())
    missing = named - served
    assert not missing, f"named in the guide, served by no demo service: {missing}"


def test_the_check_reads_every_kind_of_command() -> None:
    assert {
        "mgrecs cache status",
        "mgrecs promote VERSION",
        "curl http://<api>/readyz",
        'psql "$MGRECS_DATABASE_URL" -c "SELECT * FROM products WHERE product_id = \'P0001\'"',
    } <= guide_commands()
    assert REPO_ROOT / "docs" / "operations.md" == GUIDE
