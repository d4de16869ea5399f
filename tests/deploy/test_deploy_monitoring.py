"""deploy/prometheus and deploy/grafana: every service scraped on its real port, the alerts of
issues 8, 15, 18 and 20, and only metric names the code registers."""

import json
import subprocess
from pathlib import Path
from typing import Any

from mgrecs.common.settings import Settings
from support.deploy_files import (
    DEPLOY,
    REPO_ROOT,
    compose,
    defined_metrics,
    image_of,
    load_yaml,
    metrics_in,
)

PROMTOOL = REPO_ROOT / ".tools" / "prometheus" / "usr" / "bin" / "promtool"
"""Unpacked from Debian's prometheus package by `make test` (Makefile, PROMTOOL)."""


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: `make test` (or `make {PROMTOOL}`) unpacks it"
    return subprocess.run(
        [str(PROMTOOL), *args],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=120,
    )


def scrape_targets() -> dict[str, tuple[set[str], int]]:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets: dict[str, tuple[set[str], int]] = {}
    for job in config["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        targets[job["job_name"]] = (set(sd["names"]), sd["port"])
    return targets


def test_every_service_with_metrics_is_scraped_on_its_port() -> None:
    fields = Settings.model_fields
    ports = {
        job: fields[f"{job}_{suffix}"].default
        for job, suffix in [
            ("ingest", "port"),
            ("connector", "metrics_port"),
            ("api", "port"),
            ("engine", "port"),
            ("tracker", "metrics_port"),
            ("batch", "metrics_port"),
            ("scheduler", "metrics_port"),
        ]
    }
    targets = scrape_targets()
    assert {job: port for job, (_, port) in targets.items()} == ports
    scraped = set().union(*(names for names, _ in targets.values()))
    services = compose()["services"]
    with_metrics = {
        name for name, s in services.items() if image_of(s) in ports or name.startswith("tracker-")
    }
    assert scraped == with_metrics


def alert_rules() -> dict[str, str]:
    config = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    assert load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["rule_files"] == ["alerts.yml"]
    return {rule["alert"]: rule["expr"] for group in config["groups"] for rule in group["rules"]}


def test_alert_rules_cover_issue_8_with_real_metrics() -> None:
    rules = alert_rules()
    assert set(rules) == {
        "CacheStale",
        "ConsumerLagGrowing",
        "DeadLettersAppearing",
        "ApiLatencyP99High",
        "DriftFlagged",
        "EventsAuthFailing",
        "ConnectorDown",
        "ConnectorWatermarkStalled",
        "OnlineAccuracyLow",
        "CostOverBudget",
    }
    known = defined_metrics()
    for name, expr in rules.items():
        assert metrics_in(expr) and metrics_in(expr) <= known, name
    assert "0.2" in rules["ApiLatencyP99High"] and "0.99" in rules["ApiLatencyP99High"]
    assert (
        str(Settings.model_fields["cache_ttl_hours"].default).removesuffix(".0")
        in rules["CacheStale"]
    )


def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "mgrecs.json").read_text()
    )
    return found


def rows(board: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each row's title and the panels below it, up to the next row."""
    found: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            current = found.setdefault(panel["title"], [])
        else:
            current.append(panel)
    return found


def test_dashboard_covers_the_pipeline_with_real_metrics() -> None:
    board = dashboard()
    panels = [p for p in board["panels"] if p["type"] != "row"]
    used = set().union(*(metrics_in(t["expr"]) for p in panels for t in p["targets"]))
    assert used <= defined_metrics()
    prefixes = {name.split("_")[1] for name in used}
    assert {"ingest", "connector", "tracker", "batch", "api", "cache", "model", "drift"} <= prefixes
    assert {"mgrecs_attributed_revenue", "mgrecs_online_metric"} <= used
    cost = rows(board)["Cost"]
    in_cost = set().union(*(metrics_in(t["expr"]) for p in cost for t in p["targets"]))
    assert {"mgrecs_cost_estimate_today_usd", "mgrecs_cost_daily_budget_usd"} <= in_cost
    # A share of a budget of 0 is no number: the panel says why it is empty.
    (share,) = [p for p in cost if "mgrecs_cost_daily_budget_usd) > 0)" in p["targets"][0]["expr"]]
    assert "MGRECS_DAILY_BUDGET" in share["fieldConfig"]["defaults"]["noValue"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    provisioning = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "mgrecs.yml")
    mounts = compose()["services"]["grafana"]["volumes"]
    (provider,) = provisioning["providers"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel's PromQL as a recording rule: promtool refuses one that does not parse."""
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{n}", "expr": e} for n, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_accepts_the_config_and_its_rules() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_not_before() -> None:
    cases = load_yaml(DEPLOY / "prometheus" / "alerts.test.yml")["tests"]
    tested = {case["alertname"] for test in cases for case in test["alert_rule_test"]}
    assert tested == set(alert_rules())
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
