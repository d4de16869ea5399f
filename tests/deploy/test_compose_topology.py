"""deploy/compose.yml run as a whole: every service of the file started as local processes
with its command, environment and replica count (tests/support/compose_run.py maps the
compose network onto this machine's PostgreSQL and broker), orders pulled from the fake
company API by the connector, a retrain and an infer asked for as an operator does, and the
region page and a customer's list read through the api with a read key."""

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from mgrecs.cli.processes import ServiceProcess, stop_all, wait_healthy
from mgrecs.common.db import create_pool
from mgrecs.common.settings import Settings
from mgrecs.ingest.public import FAKE_COMPANY_API, generate
from mgrecs.store import customers, jobs, order_reads
from mgrecs.store.databases import create_database, drop_database
from support.compose_run import (
    PORT_SETTINGS,
    Network,
    Replica,
    free_port,
    health_url,
    image_env,
    interpolate,
    is_job,
    replicas,
    runtime_stage,
    volume_mounts,
)
from support.deploy_files import DEPLOY, compose, load_yaml_all

PLACEHOLDER = re.compile(r"change-me[\w-]*")
SHELL_SECRETS = ("MGRECS_INGEST_API_KEYS", "MGRECS_API_READ_KEYS", "MGRECS_CONNECTOR_TOKEN")
"""What compose.yml reads from the operator's shell (`${NAME:?…}`), not from the env file."""
DATA = {"seed": 5, "customers": 200, "products": 60, "orders": 1500}


def operator_env_file(directory: Path, company_url: str, topic_prefix: str) -> Path:
    """example.env as the operations guide says to copy it: every change-me value replaced
    by a random one (the same placeholder by the same value, so paired secrets still
    match), the company API's address, and, because the test broker is shared, a topic
    prefix."""
    chosen: dict[str, str] = {}

    def secret(match: re.Match[str]) -> str:
        return chosen.setdefault(match.group(0), secrets.token_hex(16))

    text = PLACEHOLDER.sub(secret, (DEPLOY / "example.env").read_text())
    company = f"MGRECS_CONNECTOR_BASE_URL={company_url}"
    text = re.sub(r"(?m)^MGRECS_CONNECTOR_BASE_URL=.*$", company, text)
    path = directory / "prod.env"
    path.write_text(text + f"MGRECS_TOPIC_PREFIX={topic_prefix}\n")
    return path


def env_value(path: Path, name: str) -> str:
    match = re.search(rf"(?m)^{name}=(.*)$", path.read_text())
    assert match, name
    return match.group(1)


def clean_environment() -> dict[str, str]:
    """This process's variables without any MGRECS_* (a container starts without them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MGRECS_")}


def run_job(replica: Replica, *extra: str) -> str:
    """A cli-image job to completion (exit 0), its output."""
    executable = Path(sys.executable).parent / replica.argv[0]
    command = [str(executable), *(extra or replica.argv[1:])]
    done = subprocess.run(
        command,
        env={**clean_environment(), **replica.env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{replica.name} {command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def wait_for(what: str, check: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting: {what}")


def query(url: str, read: Callable[..., object], *args: object) -> object:
    async def run() -> object:
        pool = await create_pool(url)
        try:
            return await read(pool, *args)
        finally:
            await pool.close()

    return asyncio.run(run())


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    """A database nobody migrated: the compose `migrate` job must. Its URL without an empty
    password (the embedded PostgreSQL's `postgres:@`), which the services refuse outside
    development as an unset secret; the server trusts its local user either way."""
    name = f"mgrecs_compose_{uuid.uuid4().hex[:8]}"
    url = urlsplit(asyncio.run(create_database(postgres_server_url, name)))
    if url.password == "":
        url = url._replace(netloc=url.netloc.replace(":@", "@", 1))
    yield urlunsplit(url)
    asyncio.run(drop_database(postgres_server_url, name))


def test_every_compose_service_listens_where_its_image_and_compose_say() -> None:
    """The port a service's health check and compose's `ports` name is the one the service
    listens on with compose's environment (its setting's value, or the default)."""
    shell = {name: "x" for name in SHELL_SECRETS}
    checked = set()
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        image = service["image"].removeprefix("mgrecs-")
        url = health_url(service, runtime_stage(service))
        if image not in PORT_SETTINGS:
            assert url is None, name  # the cli image's jobs have nothing to check
            continue
        variable = PORT_SETTINGS[image]
        env = {**image_env(runtime_stage(service)), **service.get("environment", {})}
        listens = int(
            interpolate(str(env[variable]), shell)
            if variable in env
            else Settings.model_fields[variable.removeprefix("MGRECS_").lower()].default
        )
        assert url is not None and f":{listens}/" in url, name
        for published in service.get("ports", []):
            assert str(published).split(":")[-1] == str(listens), name
        checked.add(image)
    assert checked == set(PORT_SETTINGS)


def test_env_file_dollars_are_quoted_against_compose_interpolation() -> None:
    """Compose interpolates `$NAME` in unquoted and double-quoted env-file values (a filter's
    `$CATEGORY` would become empty); only single-quoted values are taken as written."""
    for line in (DEPLOY / "example.env").read_text().splitlines():
        name, _, value = line.partition("=")
        if line.startswith("#") or "$" not in value:
            continue
        assert value.startswith("'") and value.endswith("'"), name


def test_kubernetes_probes_and_ports_are_where_the_compose_services_listen() -> None:
    """Each Deployment's container port, probes and Service target the port its compose
    twin listens on (the image's health check port: the previous test ties it to the
    setting)."""
    objects = [
        doc for path in sorted((DEPLOY / "k8s").glob("*.yml")) for doc in load_yaml_all(path)
    ]
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    checked = 0
    for name, service in compose()["services"].items():
        if name not in deployments:
            continue
        url = health_url(service, runtime_stage(service))
        assert url is not None, name
        listens = int(url.rsplit(":", 1)[1].split("/")[0])
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [listens], name
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == listens, (name, probe)
        if name in services:
            targets = {p.get("targetPort", p["port"]) for p in services[name]["spec"]["ports"]}
            assert targets == {listens}, name
        checked += 1
    assert checked == len(deployments)


def test_compose_topology_pulls_orders_and_serves_them(
    empty_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    company_port = free_port()
    env_file = operator_env_file(
        tmp_path, f"http://127.0.0.1:{company_port}", f"c{uuid.uuid4().hex[:8]}-"
    )
    shell = {"MGRECS_ENV_FILE": str(env_file)} | {
        name: env_value(env_file, name) for name in SHELL_SECRETS
    }
    (tmp_path / "artifacts").mkdir()
    mounts = volume_mounts(compose()["services"], {"artifacts": tmp_path / "artifacts"})
    network = Network(empty_database, kafka_bootstrap, mounts)
    everything = replicas(shell, network)
    counts = {r.service for r in everything}
    assert {"migrate", "topics", "connector", "api", "engine", "batch"} <= counts

    for job in (r for r in everything if is_job(r)):
        run_job(job)
    cli = next(r for r in everything if is_job(r))

    anchor = datetime.now(UTC)
    company = ServiceProcess(
        "company-api",
        [
            "python",
            "-m",
            FAKE_COMPANY_API,
            *("--port", str(company_port)),
            *(item for key, value in DATA.items() for item in (f"--{key}", str(value))),
            *("--anchor", anchor.isoformat()),
            f"--token={shell['MGRECS_CONNECTOR_TOKEN']}",
        ],
        clean_environment(),
        tmp_path / "logs" / "company-api.log",
    )
    running = [company]
    try:
        company.start()
        wait_healthy(f"http://127.0.0.1:{company_port}/healthz", company, timeout=120)
        for replica in (r for r in everything if not is_job(r)):
            process = ServiceProcess(
                replica.name,
                replica.argv,
                {**clean_environment(), **replica.env},
                tmp_path / "logs" / f"{replica.name}.log",
            )
            process.start()
            running.append(process)
        services = [r for r in everything if not is_job(r)]
        for replica, process in zip(services, running[1:], strict=True):
            if replica.health_url is not None:
                wait_healthy(replica.health_url, process, timeout=240)

        lines = sum(len(order.lines) for order in generate(**DATA, anchor=anchor).orders)
        wait_for(
            f"the connector's {lines} order lines in PostgreSQL",
            lambda: query(empty_database, order_reads.count_lines) == lines,
        )
        for kind in ("retrain", "infer"):
            printed = run_job(cli, "tick", kind)
            tick_id = printed.split()[-1]
            wait_for(
                f"{kind} tick {tick_id} done",
                lambda tick=tick_id: query(empty_database, jobs.outcome, tick) is not None,
            )
            outcome = query(empty_database, jobs.outcome, tick_id)
            assert isinstance(outcome, dict) and outcome.get("status") != "failed", outcome

        read_key = shell["MGRECS_API_READ_KEYS"]
        apis = [r for r in services if r.service == "api"]
        assert len(apis) == 2
        region = query(empty_database, customers.regions)[0]  # type: ignore[index]
        for api in apis:
            base = api.health_url.removesuffix("/healthz")  # type: ignore[union-attr]
            assert httpx.get(f"{base}/v1/regions/{region}/recommendations").status_code == 401
            page = httpx.get(
                f"{base}/v1/regions/{region}/recommendations", headers={"X-API-Key": read_key}
            )
            assert page.status_code == 200, page.text
            assert page.json()["items"], page.json()
        customer = _a_cached_customer(empty_database)
        base = apis[1].health_url.removesuffix("/healthz")  # type: ignore[union-attr]
        answer = httpx.get(
            f"{base}/v1/users/{customer}/recommendations", headers={"X-API-Key": read_key}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["source"] == "cache" and answer.json()["items"]
    except BaseException:
        for process in running:
            print(f"--- {process.name} ---\n{process.log_tail(15)}")
        raise
    finally:
        stop_all(running)


def _a_cached_customer(url: str) -> str:
    async def read() -> str:
        pool = await create_pool(url)
        try:
            value = await pool.fetchval("SELECT user_id FROM offline_user_recommendations LIMIT 1")
            assert value is not None
            return str(value)
        finally:
            await pool.close()

    return asyncio.run(read())
