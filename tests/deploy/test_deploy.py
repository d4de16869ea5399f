"""deploy/compose.yml, deploy/docker/*.Dockerfile and deploy/k8s: valid, and naming only real things
(console scripts, CLI commands, settings, services). No Docker engine here: static checks."""

import ast
import math
import re

import kubernetes_validate
import pytest
from jsonschema import Draft201909Validator, ValidationError

from mgrecs.batch.worker import BATCH_POOL_SIZE
from mgrecs.common.settings import Settings
from mgrecs.engine_service.app import ENGINE_POOL_SIZE
from mgrecs.ingest.connector import CONNECTOR_POOL_SIZE
from mgrecs.ingest.identity import RESOLVER_POOL_SIZE
from mgrecs.store.usage import METERING_POOL_SIZE
from mgrecs.tracker.db_sink import SINK_POOL_SIZE
from mgrecs.tracker.worker import MAX_RECORDS
from support.deploy_files import (
    DEPLOY,
    GUIDE,
    REPO_ROOT,
    cli_commands,
    compose,
    compose_schema,
    console_scripts,
    dockerfile_stages,
    env_file_names,
    exec_form,
    image_of,
    load_yaml_all,
    setting_env_names,
)

SERVICE_IMAGES = {"api", "ingest", "connector", "tracker", "batch", "scheduler", "engine"}
INFRA = {"kafka", "postgres", "prometheus", "grafana"}
DOCKERFILES = DEPLOY / "docker"


def test_compose_file_validates_against_the_compose_specification() -> None:
    Draft201909Validator(compose_schema()).validate(compose())


def test_the_schema_checks_catch_broken_files() -> None:
    broken = compose()
    broken["services"]["api"]["deploy"] = {"replicas": "two"}
    with pytest.raises(ValidationError, match="two"):
        Draft201909Validator(compose_schema()).validate(broken)
    deployment = next(o for o in kubernetes_objects() if o["kind"] == "Deployment")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_compose_has_every_service_with_its_replicas() -> None:
    services = compose()["services"]
    assert INFRA | {"migrate", "topics", "scheduler"} <= set(services)
    images = {image_of(s) for s in services.values() if "build" in s}
    assert images == SERVICE_IMAGES | {"cli"}
    assert images == {path.name.removesuffix(".Dockerfile") for path in DOCKERFILES.iterdir()}
    replicas = {name: s.get("deploy", {}).get("replicas", 1) for name, s in services.items()}
    assert replicas["api"] >= 2 and replicas["engine"] >= 2
    assert replicas["tracker-db"] >= 2 and replicas["tracker-events"] >= 2
    assert replicas["connector"] >= 2  # one pulls, one stands by


def test_the_connector_image_carries_the_mapping_it_reads() -> None:
    runtime = dockerfile_stages(DOCKERFILES / "connector.Dockerfile")["runtime"]
    env = dict(
        pair.split("=", 1)
        for key, args in runtime.instructions
        if key == "ENV"
        for pair in args.split()
    )
    mapping = env["MGRECS_CONNECTOR_MAPPING_FILE"]
    copies = [args for key, args in runtime.instructions if key == "COPY"]
    assert f"deploy/company-api-mapping.json {mapping}" in copies
    assert exec_form(runtime.last("CMD") or "[]") == ["mgrecs-connector"]
    port = Settings.model_fields["connector_metrics_port"].default
    assert runtime.last("EXPOSE") == str(port)
    check = compose()["services"]["connector"]["healthcheck"]["test"]
    assert check[-1] == f"http://127.0.0.1:{port}/healthz"


def test_compose_depends_on_existing_services_and_waits_for_the_jobs() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", [])) <= set(services), name
        if image_of(service) in SERVICE_IMAGES:
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_compose_commands_are_real_executables_and_cli_commands() -> None:
    scripts, commands = console_scripts(), cli_commands()
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        target = dockerfile_stages(REPO_ROOT / service["build"]["dockerfile"])["runtime"]
        command = service.get("command") or exec_form(target.last("CMD") or "[]")
        entrypoint = exec_form(target.last("ENTRYPOINT") or "[]")
        argv = entrypoint + command
        assert argv[0] in scripts, name
        if argv[0] == "mgrecs":
            assert argv[1] in commands, name


def test_compose_environment_names_are_settings() -> None:
    known = setting_env_names()
    assert env_file_names(DEPLOY / "example.env") <= known
    for name, service in compose()["services"].items():
        if "build" in service:
            assert set(service.get("environment", {})) <= known, name


def test_every_service_image_is_multi_stage_non_root_and_checks_its_health() -> None:
    for image in SERVICE_IMAGES | {"cli"}:
        stages = dockerfile_stages(DOCKERFILES / f"{image}.Dockerfile")
        assert list(stages) == ["build", "runtime"], image
        build, runtime = stages["build"], stages["runtime"]
        assert "uv sync --frozen --no-dev" in (build.last("RUN") or ""), image
        copies = [args for key, args in runtime.instructions if key == "COPY"]
        assert "--from=build /app/.venv /app/.venv" in copies, image
        assert runtime.base == build.base, image  # the runtime has no uv nor sources
        assert not any("uv" in args for key, args in runtime.instructions if key == "RUN"), image
        user = runtime.last("USER")
        assert user is not None and user.split(":")[0] not in {"root", "0"}, image
        healthcheck = runtime.last("HEALTHCHECK")
        assert healthcheck is not None, image
        if image != "cli":  # a one-shot job has nothing to check
            assert "CMD" in healthcheck, image
            # liveness only: a database or broker outage must not restart the containers
            assert exec_form(healthcheck.split("CMD", 1)[1])[-1].endswith("/healthz"), image


def kubernetes_objects() -> list[dict]:  # type: ignore[type-arg]
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yml")) for doc in load_yaml_all(path)]


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    objects = kubernetes_objects()
    kustomization = next(o for o in objects if o["kind"] == "Kustomization")
    version = kubernetes_validate.latest_version()
    for obj in objects:
        if obj is not kustomization:  # a kustomize file, not an API object
            kubernetes_validate.validate(obj, version, strict=True)
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in (DEPLOY / "k8s").glob("*.yml")} - {"kustomization.yml"}


def test_kubernetes_runs_the_compose_services_with_the_same_commands() -> None:
    objects = kubernetes_objects()
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    services = compose()["services"]
    built = {name for name, s in services.items() if image_of(s) != "cli"}
    assert set(deployments) == built - INFRA
    known = setting_env_names()
    config = {
        o["metadata"]["name"]: set(o.get("data") or o.get("stringData"))
        for o in objects
        if o["kind"] in {"ConfigMap", "Secret"}
    }
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] == services[name].get("deploy", {}).get("replicas", 1), name
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["image"].split(":")[0] == services[name]["image"], name
        assert container.get("command", services[name].get("command")) == services[name].get(
            "command"
        ), name
        # Liveness asks the process only (a database outage must not become a restart
        # storm); readiness asks whether it can answer (its database or broker).
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        for source in container["envFrom"]:
            ref = source.get("configMapRef") or source["secretRef"]
            assert ref["name"] in config
    assert config["mgrecs-config"] <= known
    assert config["mgrecs-secrets"] - {"POSTGRES_PASSWORD"} <= known


MEASURED_PEAK_GIB = {"engine": 3.0, "batch": 3.33}
"""Peak resident memory at full size (1M customers, 10M interactions; bench/RESULTS.md,
`make bench-batch` and `make bench-train`): the batch's retrain, the engine's loaded model."""
HEADROOM = 1.2


def _gib(quantity: str) -> float:
    units = {"Mi": 1 / 1024, "Gi": 1.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_memory_limits_sit_above_the_measured_peaks() -> None:
    deployments = {
        o["metadata"]["name"]: o for o in kubernetes_objects() if o["kind"] == "Deployment"
    }
    for name, peak in MEASURED_PEAK_GIB.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        limit = _gib(container["resources"]["limits"]["memory"])
        assert limit >= HEADROOM * peak, (name, limit, peak)


def test_every_kubernetes_container_has_requests_and_a_memory_limit() -> None:
    """A container without requests makes its pod BestEffort, the first the kubelet evicts
    when the node runs short of memory (PostgreSQL and Kafka included); without a memory
    limit one leaking process takes the node's memory from the others."""
    pods = [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in kubernetes_objects()
        if "template" in o.get("spec", {})
    ]
    assert {"postgres", "kafka", "migrate", "topics", "api"} <= {name for name, _ in pods}
    for name, pod in pods:
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            limit = _gib(resources.get("limits", {}).get("memory", "0Mi"))
            assert limit >= _gib(resources["requests"]["memory"]) > 0, name


def test_api_engine_and_trackers_scale_horizontally() -> None:
    objects = kubernetes_objects()
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    assert {"api", "engine", "tracker-db", "tracker-events"} <= set(scaled) <= deployments
    for spec in scaled.values():
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"]


def _server_settings(args: list[str]) -> dict[str, int]:
    """The `-c name=value` settings a PostgreSQL server is started with."""
    pairs = (args[i + 1].split("=", 1) for i, arg in enumerate(args[:-1]) if arg == "-c")
    return {name: int(value) for name, value in pairs}


def test_postgres_has_room_for_every_tracker_replicas_customer_locks() -> None:
    """A tracker-db batch holds one advisory lock per customer (up to `MAX_RECORDS`) until
    it commits; PostgreSQL's shared lock table holds max_locks_per_transaction x
    max_connections of them. With the default 64 x 100, six full batches fit at once and a
    seventh fails with "out of shared memory": every replica's batch must fit, twice over."""
    objects = kubernetes_objects()
    hpa = next(
        o["spec"]
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == "tracker-db"
    )
    postgres = next(
        o["spec"]["template"]["spec"]["containers"][0]
        for o in objects
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "postgres"
    )
    services = compose()["services"]
    deployed = {
        "kubernetes": (_server_settings(postgres["args"]), hpa["maxReplicas"]),
        "compose": (
            _server_settings(services["postgres"]["command"][1:]),
            services["tracker-db"]["deploy"]["replicas"],
        ),
    }
    for where, (settings, replicas) in deployed.items():
        room = settings["max_locks_per_transaction"] * settings.get("max_connections", 100)
        assert room >= 2 * replicas * MAX_RECORDS, (where, settings, replicas)


CONNECTION_HEADROOM = 20
"""Slots beyond the services' pools: PostgreSQL's superuser_reserved_connections (3), the
migrate job (1), two of the largest CLI commands at once (`mgrecs sync`: 6) and a few psql
sessions."""

ONE_SHOT_CONNECTIONS = {
    "libs/store/src/mgrecs/store/databases.py",  # create/drop database: embedded stack, tests
    "libs/store/src/mgrecs/store/migrations/env.py",  # mgrecs migrate
    "services/cli/src/mgrecs/cli/demo.py",
    "services/cli/src/mgrecs/cli/drift.py",
    "services/cli/src/mgrecs/cli/models.py",
    "services/cli/src/mgrecs/cli/quality.py",
    "services/ingest/src/mgrecs/ingest/backfill.py",  # mgrecs backfill
    "services/ingest/src/mgrecs/ingest/connector.py",  # mgrecs sync (one pass)
}
"""Where a CLI command or a job connects: in CONNECTION_HEADROOM, not in a service's count."""

SERVICE_CONNECTIONS = {
    "libs/common/src/mgrecs/common/db.py",  # create_pool itself
    "libs/store/src/mgrecs/store/health.py",  # database_check: the probe's connection
    "libs/store/src/mgrecs/store/usage.py",
    "services/api/src/mgrecs/api/app.py",
    "services/batch/src/mgrecs/batch/worker.py",
    "services/engine/src/mgrecs/engine_service/app.py",
    "services/ingest/src/mgrecs/ingest/connector_service.py",
    "services/ingest/src/mgrecs/ingest/identity.py",
    "services/ingest/src/mgrecs/ingest/leadership.py",  # the puller lock's connection
    "services/tracker/src/mgrecs/tracker/db_sink.py",
}
"""Where a long-running service connects: each counted by `_connections_per_replica`."""


def _connections_per_replica(service: str, env: dict[str, str]) -> int:
    """The most connections one replica of `service` can hold at once: its pools' sizes in
    the code, with its settings as deployed (`env`, else their defaults)."""

    def setting(name: str) -> int:
        return int(env.get(f"MGRECS_{name.upper()}", Settings.model_fields[name].default))

    probe = 1  # database_check: each readiness probe on a connection of its own
    meter = METERING_POOL_SIZE  # usage flushed on a pool of its own (api, engine: theirs)
    sink = SINK_POOL_SIZE + meter + probe
    return {
        "api": setting("api_pool_size") * setting("api_workers"),
        "engine": ENGINE_POOL_SIZE,
        "tracker-db": setting("tracker_db_consumers") * SINK_POOL_SIZE + meter + probe,
        "tracker-events": meter,
        "tracker-feedback": sink,
        "tracker-products": sink,
        "tracker-served": sink,
        "batch": BATCH_POOL_SIZE + meter + probe,
        "scheduler": meter,
        "ingest": RESOLVER_POOL_SIZE + meter,
        "connector": CONNECTOR_POOL_SIZE + RESOLVER_POOL_SIZE + 1 + meter,  # 1: the lock
    }[service]


def _suggested_compose_scale() -> dict[str, int]:
    """The `--scale NAME=N` the Scale table of docs/operations.md suggests, for every service
    its row names."""
    section = GUIDE.read_text().split("\n## Scale\n", 1)[1].split("\n## ", 1)[0]
    scale: dict[str, int] = {}
    for names, how in re.findall(r"^\| ([a-z, -]+) \| ([^|]*) \|", section, re.MULTILINE):
        found = re.search(r"--scale [a-z-]+=(\d+)", how)
        if found:
            scale |= dict.fromkeys(names.split(", "), int(found.group(1)))
    return scale


def _surge(deployment: dict, replicas: int) -> int:  # type: ignore[type-arg]
    """The pods a rolling update starts beyond `replicas` (Kubernetes' default: 25 %)."""
    rolling = deployment["spec"].get("strategy", {}).get("rollingUpdate", {})
    surge = str(rolling.get("maxSurge", "25%"))
    return math.ceil(replicas * int(surge[:-1]) / 100) if surge.endswith("%") else int(surge)


def test_postgres_has_a_connection_for_every_replicas_pools() -> None:
    """Each replica's pools at the most replicas it can have: the autoscaler's maximum plus a
    rolling update's surge (Kubernetes), the scale docs/operations.md suggests (Compose);
    with PostgreSQL's default max_connections, 100, the api alone at 10 replicas takes them
    all and the next connection fails with "too many clients already"."""
    objects = kubernetes_objects()
    maxima = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]["maxReplicas"]
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    config = next(o["data"] for o in objects if o["kind"] == "ConfigMap")
    postgres = next(
        o["spec"]["template"]["spec"]["containers"][0]
        for o in objects
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "postgres"
    )
    kubernetes_need = CONNECTION_HEADROOM
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = config | {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        replicas = maxima.get(name, deployment["spec"]["replicas"])
        replicas += _surge(deployment, replicas)
        kubernetes_need += replicas * _connections_per_replica(name, env)
    services = compose()["services"]
    env_file = dict(
        line.split("=", 1)
        for line in (DEPLOY / "example.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    suggested = _suggested_compose_scale()
    compose_need = CONNECTION_HEADROOM
    for name, service in services.items():
        if image_of(service) in SERVICE_IMAGES:
            replicas = max(service.get("deploy", {}).get("replicas", 1), suggested.get(name, 0))
            env = env_file | service.get("environment", {})
            compose_need += replicas * _connections_per_replica(name, env)
    assert suggested["api"] > 1 and maxima["api"] > 1  # the table and the HPAs were read
    deployed = {
        "kubernetes": (_server_settings(postgres["args"]), kubernetes_need),
        "compose": (_server_settings(services["postgres"]["command"][1:]), compose_need),
    }
    for where, (settings, need) in deployed.items():
        assert settings.get("max_connections", 100) >= need, (where, settings, need)


def _opens(call: ast.Call) -> str | None:
    """ "pool" for a `create_pool(...)` call, "connection" for `asyncpg.connect(...)`."""
    func = call.func
    if isinstance(func, ast.Name | ast.Attribute):
        name = func.id if isinstance(func, ast.Name) else func.attr
        if name == "create_pool":
            return "pool"
        if isinstance(func, ast.Attribute) and ast.unparse(func) == "asyncpg.connect":
            return "connection"
    return None


def test_every_connection_the_code_opens_is_in_the_budget() -> None:
    """A new pool or connection in a service must be counted in `_connections_per_replica`
    (or be a one-shot command's, in the headroom); a pool names its size, never asyncpg's
    default (10) by accident."""
    found: set[str] = set()
    for path in sorted(REPO_ROOT.glob("*/*/src/**/*.py")):
        for call in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)):
            opens = _opens(call)
            if opens is not None:
                found.add(str(path.relative_to(REPO_ROOT)))
            if opens == "pool":
                assert "max_size" in {k.arg for k in call.keywords}, (path, call.lineno)
    assert found == SERVICE_CONNECTIONS | ONE_SHOT_CONNECTIONS


def test_every_pod_runs_read_only_without_privileges() -> None:
    """Deployments and Jobs: non-root, read-only root file system, no privilege escalation,
    every capability dropped; a service that writes has an emptyDir at /tmp."""
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in kubernetes_objects()
        if o["kind"] in {"Deployment", "Job"}
    }
    assert {"api", "engine", "batch", "migrate", "topics"} <= set(pods)
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
        if name not in {"migrate", "topics"}:
            volumes = {v["name"]: v for v in pod["volumes"]}
            (container,) = pod["containers"]
            tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
            assert "emptyDir" in volumes[tmp["name"]], name


def _allowed_from(policy: dict) -> set[str]:  # type: ignore[type-arg]
    """The `app` labels a policy lets in (every one of them: "*" when it has no `from`)."""
    apps: set[str] = set()
    for rule in policy["spec"]["ingress"]:
        if "from" not in rule:
            return {"*"}
        for peer in rule["from"]:
            selector = peer.get("podSelector", {})
            apps |= set(selector.get("matchLabels", {}).values())
            for expression in selector.get("matchExpressions", []):
                apps |= set(expression["values"])
    return apps


def test_network_policies_deny_by_default_and_allow_only_the_callers() -> None:
    objects = kubernetes_objects()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    default = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert default and default[0]["spec"]["policyTypes"] == ["Ingress"]
    by_target: dict[str, set[str]] = {}
    for policy in policies:
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get("app")
        if target is not None:
            by_target.setdefault(target, set()).update(_allowed_from(policy))
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert by_target["api"] == by_target["ingest"] == {"*"}
    assert by_target["engine"] == {"api", "tracker-events", "batch"}
    assert by_target["postgres"] == services | {"migrate"}
    assert by_target["kafka"] == services | {"topics"}
    labelled = {
        o["spec"]["template"]["metadata"]["labels"]["app"]
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet", "Job"}
    }
    assert set(by_target) | by_target["postgres"] | by_target["kafka"] <= labelled


def test_deployed_configs_need_keys_and_have_no_working_default_secret() -> None:
    services = compose()["services"]
    assert ":?" in services["api"]["environment"]["MGRECS_API_READ_KEYS"]
    assert ":?" in services["connector"]["environment"]["MGRECS_CONNECTOR_TOKEN"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert ":?" in grafana["GF_SECURITY_ADMIN_PASSWORD"]
    assert "MGRECS_API_READ_KEYS" in env_file_names(DEPLOY / "example.env")
    (secret,) = [o for o in kubernetes_objects() if o["kind"] == "Secret"]
    values = secret["stringData"]
    assert "MGRECS_API_READ_KEYS" in values
    assert "MGRECS_CONNECTOR_TOKEN" in values
    for name, value in values.items():
        if name != "MGRECS_AWS_ACCESS_KEY_ID":  # a key id, not a secret
            assert "change-me" in value, name
