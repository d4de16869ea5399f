"""deploy/compose.yml, deploy/Dockerfile and deploy/k8s: valid, and naming only real things
(console scripts, CLI commands, settings, services). No Docker engine here: static checks."""

import kubernetes_validate
import pytest
from deploy_files import (
    DEPLOY,
    cli_commands,
    compose,
    compose_schema,
    console_scripts,
    dockerfile_stages,
    env_file_names,
    exec_form,
    load_yaml_all,
    setting_env_names,
)
from jsonschema import Draft201909Validator, ValidationError

SERVICE_TARGETS = {"api", "ingest", "tracker", "batch", "scheduler", "engine"}
INFRA = {"kafka", "postgres", "prometheus", "grafana"}


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
    targets = {s["build"]["target"] for s in services.values() if "build" in s}
    assert targets == SERVICE_TARGETS | {"cli"}
    replicas = {name: s.get("deploy", {}).get("replicas", 1) for name, s in services.items()}
    assert replicas["api"] >= 2
    assert replicas["tracker-db"] >= 2 and replicas["tracker-events"] >= 2


def test_compose_depends_on_existing_services_and_waits_for_the_jobs() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", [])) <= set(services), name
        if service.get("build", {}).get("target") in SERVICE_TARGETS:
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_compose_commands_are_real_executables_and_cli_commands() -> None:
    stages = dockerfile_stages(DEPLOY / "Dockerfile")
    scripts, commands = console_scripts(), cli_commands()
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        target = stages[service["build"]["target"]]
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
    stages = dockerfile_stages(DEPLOY / "Dockerfile")
    for target in SERVICE_TARGETS | {"cli"}:
        stage = stages[target]
        copies = [args for key, args in stage.instructions if key == "COPY"]
        assert any(args.startswith("--from=build-") for args in copies), target
        user = stage.last("USER")
        assert user is not None and user.split(":")[0] not in {"root", "0"}, target
        healthcheck = stage.last("HEALTHCHECK")
        assert healthcheck is not None, target
        if target != "cli":  # a one-shot job has nothing to check
            assert "CMD" in healthcheck, target
    assert stages["build"].last("RUN") is not None
    assert stages["runtime"].base == stages["build"].base  # the runtime has no uv nor sources
    assert not any("uv" in args for key, args in stages["runtime"].instructions if key == "RUN")


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
    built = {name for name, s in services.items() if s.get("build", {}).get("target") != "cli"}
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
        assert "livenessProbe" in container, name
        for source in container["envFrom"]:
            ref = source.get("configMapRef") or source["secretRef"]
            assert ref["name"] in config
    assert config["mgrecs-config"] <= known
    assert config["mgrecs-secrets"] - {"POSTGRES_PASSWORD"} <= known


def test_api_and_trackers_scale_horizontally() -> None:
    objects = kubernetes_objects()
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    assert {"api", "tracker-db", "tracker-events"} <= set(scaled) <= deployments
    for spec in scaled.values():
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
