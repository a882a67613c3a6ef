"""Alerts that reach someone: Alertmanager's configuration (docker compose, and the same routes
in the Kubernetes example values) checked by the real amtool (Debian package
`prometheus-alertmanager`), routing each severity of the shipped rules to its receiver."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTMANAGER = REPO / "deploy" / "alertmanager"
EXAMPLE = REPO / "deploy" / "helm" / "motcua" / "examples" / "kube-prometheus-stack-values.yaml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def amtool(tmp_path_factory):
    path = shutil.which("amtool")
    if path is None:
        pytest.skip("amtool is missing: apt-get install -y prometheus-alertmanager (.ci/run must install it)")
    # The configuration names its templates where compose mounts them; point them here.
    folder = tmp_path_factory.mktemp("alertmanager")
    config = load(ALERTMANAGER / "alertmanager.yml")
    config["templates"] = [str(ALERTMANAGER / "*.tmpl")]
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path, folder / "alertmanager.yml"


def amtool_run(amtool, *args):
    path, config = amtool
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(config.parent)})


def test_amtool_accepts_the_configuration(amtool):
    result = amtool_run(amtool, "check-config", str(amtool[1]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 receivers" in result.stdout and "1 templates" in result.stdout


@pytest.mark.parametrize("labels, receivers", [
    (["alertname=MotcuaServiceNotReady", "severity=critical", "motcua_service=queue"], {"on-call", "ops-team"}),
    (["alertname=MotcuaWardLinkDown", "severity=warning", "ward_id=dn-hai-chau"], {"ops-team"}),
])
def test_each_severity_reaches_its_receiver(amtool, labels, receivers):
    result = amtool_run(amtool, "config", "routes", "test", "--config.file", str(amtool[1]), *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(result.stdout.strip().split(",")) == receivers


def test_every_severity_of_the_rules_has_a_route():
    severities = {rule["labels"]["severity"] for path in (REPO / "deploy" / "prometheus" / "rules").glob("*.yml")
                  for group in load(path)["groups"] for rule in group["rules"] if "alert" in rule}
    routes = load(ALERTMANAGER / "alertmanager.yml")["route"]["routes"]
    routed = " ".join(m for route in routes for m in route["matchers"])
    assert severities == {"critical", "warning"}
    assert all(severity in routed for severity in severities)


def test_prometheus_sends_to_alertmanager_and_compose_runs_it():
    prometheus = load(REPO / "deploy" / "prometheus" / "prometheus.yml")
    (target,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    compose = load(REPO / "docker-compose.yml")["services"]
    assert target.split(":")[0] in compose
    service = compose["alertmanager"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in service["volumes"]
    assert service["ports"] == ["127.0.0.1:9093:9093"]  # the loopback only, like the other consoles


def test_the_kubernetes_example_routes_alike():
    example = load(EXAMPLE)["alertmanager"]
    ours = load(ALERTMANAGER / "alertmanager.yml")
    for key in ("route", "receivers", "inhibit_rules", "global"):
        assert example["config"][key] == ours[key], key
    assert example["templateFiles"]["motcua.tmpl"] == (ALERTMANAGER / "motcua.tmpl").read_text(encoding="utf-8")
