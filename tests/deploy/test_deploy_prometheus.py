"""Prometheus: the scrape configuration and the alert rules, checked and unit-tested with the
real promtool (Debian package `prometheus`), and held to the metrics that really exist."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "motcua-alerts.yml"
RECORDS = PROMETHEUS / "rules" / "motcua-records.yml"
RUNBOOK_BASE = "https://git.motcua.example/motcua/motcua/-/blob/main/docs/runbooks/"
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


def test_the_shipped_rule_tests_pass_as_they_are(promtool):
    """Exactly what an operator runs from the repository's root, annotations compared too."""
    tests = sorted(str(p.relative_to(REPO)) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert len(tests) == 2
    result = run(promtool, "test", "rules", *tests, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_a_wrong_expectation_fails_the_rule_tests(promtool, tmp_path):
    """The rule tests can fail: an alert expected on the healthy ward is reported missing."""
    text = (PROMETHEUS / "tests" / "motcua-alerts.test.yml").read_text(encoding="utf-8")
    broken = text.replace("- exp_labels: {severity: warning, ward_id: dn-hai-chau}\n", "- exp_labels: {severity: warning, ward_id: hn-ba-dinh}\n", 1)
    assert broken != text
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules").mkdir()
    shutil.copy(RULES, tmp_path / "rules")
    (tmp_path / "tests" / "broken.test.yml").write_text(broken, encoding="utf-8")
    result = run(promtool, "test", "rules", "tests/broken.test.yml", cwd=tmp_path)
    assert result.returncode != 0


def test_every_alert_and_recording_rule_is_unit_tested(rules):
    tests = yaml.safe_load((PROMETHEUS / "tests" / "motcua-alerts.test.yml").read_text(encoding="utf-8"))
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
              if case["exp_alerts"]}
    assert tested == set(alerts(rules))
    records = yaml.safe_load(RECORDS.read_text(encoding="utf-8"))
    record_tests = yaml.safe_load((PROMETHEUS / "tests" / "motcua-records.test.yml").read_text(encoding="utf-8"))
    exprs = " ".join(case["expr"] for test in record_tests["tests"] for case in test["promql_expr_test"])
    named = {rule["record"] for group in records["groups"] for rule in group["rules"]}
    assert {"ward_id:motcua_dossiers_returned_total:on_time_ratio_30d", "ward_id:motcua_ratings_total:satisfied_ratio_30d",
            "ward_id:motcua_dossiers_submitted_total:online_ratio_30d"} <= {n for n in named if n in exprs}


def test_the_alerts_the_monitoring_centre_asked_for_exist(rules):
    assert {
        "MotcuaOutboxBacklogGrowing", "MotcuaEventsDeadLettered", "MotcuaDeadLetterQueueNotEmpty",
        "MotcuaWardLinkDown", "MotcuaQueueWaitOverTarget", "MotcuaOverdueDossiersRising",
        "MotcuaSmsFailureRate", "MotcuaServiceNotReady", "MotcuaWardOfficeOffline",
    } <= set(alerts(rules))


def test_every_alert_says_what_happened_and_what_to_do(rules):
    for name, rule in alerts(rules).items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key, "").strip(), (name, key)
        assert "runbook" not in rule["annotations"], name  # Alertmanager and Grafana link runbook_url
        url = rule["annotations"]["runbook_url"]
        assert url.endswith(f"/docs/runbooks/{name}.md"), (name, url)
        assert url.startswith(RUNBOOK_BASE), (name, url)  # one base, changed in one place
        runbook = (REPO / "docs" / "runbooks" / f"{name}.md").read_text(encoding="utf-8")
        for section in ("## What it means", "## How to check", "## What to do"):
            assert section in runbook, (name, section)


def test_recording_rules_use_only_exposed_metrics(promql_problems):
    records = yaml.safe_load(RECORDS.read_text(encoding="utf-8"))
    for group in records["groups"]:
        for rule in group["rules"]:
            assert promql_problems(rule["expr"]) == [], rule["record"]


def test_alerts_use_only_exposed_metrics_and_labels(rules, promql_problems):
    for name, rule in alerts(rules).items():
        assert promql_problems(rule["expr"]) == [], name


def test_the_chart_ships_the_same_rules():
    for shipped, source in ((CHART_RULES, RULES), (CHART_RULES.parent / RECORDS.name, RECORDS)):
        assert shipped.read_bytes() == source.read_bytes(), (
            f"{shipped.relative_to(REPO)} differs: cp deploy/prometheus/rules/*.yml deploy/helm/motcua/files/")


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
