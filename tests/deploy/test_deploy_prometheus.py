"""Prometheus: the scrape configuration and the alert rules, checked and unit-tested with the
real promtool (Debian package `prometheus`), and held to the metrics that really exist."""
from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "motcua-alerts.yml"
CHART_RULES = REPO / "deploy" / "helm" / "motcua" / "files" / "motcua-alerts.yml"
SERVICES = ("identity", "dossier", "queue", "notify", "rating")


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing: install the Debian package `prometheus` (.ci/run does)")
    return path


def run(*args, cwd=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture(scope="module")
def rules():
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def alerts(rules):
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def test_promtool_accepts_the_configuration_and_the_rules(promtool):
    # check config also checks every rule file the configuration loads.
    result = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rules found" in result.stdout


def test_each_alert_fires_on_its_situation_and_not_on_a_healthy_neighbour(promtool, rules, tmp_path):
    # promtool compares annotations too; their templates are already checked by `check rules`.
    rules = copy.deepcopy(rules)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "motcua-alerts.labels-only.yml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    shutil.copy(PROMETHEUS / "tests" / "motcua-alerts.test.yml", tmp_path)
    result = run(promtool, "test", "rules", "motcua-alerts.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested(rules):
    tests = yaml.safe_load((PROMETHEUS / "tests" / "motcua-alerts.test.yml").read_text(encoding="utf-8"))
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
              if case["exp_alerts"]}
    assert tested == set(alerts(rules))


def test_the_alerts_the_monitoring_centre_asked_for_exist(rules):
    assert {
        "MotcuaOutboxBacklogGrowing", "MotcuaEventsDeadLettered", "MotcuaDeadLetterQueueNotEmpty",
        "MotcuaWardLinkDown", "MotcuaQueueWaitOverTarget", "MotcuaOverdueDossiersRising",
        "MotcuaSmsFailureRate", "MotcuaServiceNotReady",
    } <= set(alerts(rules))


def test_every_alert_says_what_happened_and_what_to_do(rules):
    for name, rule in alerts(rules).items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key, "").strip(), (name, key)


def test_alerts_use_only_exposed_metrics_and_labels(rules, promql_problems):
    for name, rule in alerts(rules).items():
        assert promql_problems(rule["expr"]) == [], name


def test_the_chart_ships_the_same_rules():
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), (
        "deploy/helm/motcua/files/motcua-alerts.yml differs: cp deploy/prometheus/rules/motcua-alerts.yml "
        "deploy/helm/motcua/files/motcua-alerts.yml")


def test_every_process_of_the_compose_stack_is_scraped():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for role, port in (("api", 8080), ("worker", 9100), ("relay", 9100)):
        targets = {(target, static.get("labels", {}).get("motcua_service"))
                   for static in jobs[f"motcua-{role}"]["static_configs"] for target in static["targets"]}
        assert targets == {(f"{service}-{role}:{port}", service) for service in SERVICES}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            # Target labels named like the metrics' own would rename them to exported_*.
            assert not {"service", "ward_id"} & set(static.get("labels", {})), job["job_name"]
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in compose, target
    api_path = jobs["motcua-api"]["relabel_configs"][0]
    assert (api_path["target_label"], api_path["replacement"]) == ("__metrics_path__", "/${1}/metrics")
    assert jobs["rabbitmq-queues"]["params"]["family"] == ["queue_coarse_metrics", "queue_consumer_count"]
