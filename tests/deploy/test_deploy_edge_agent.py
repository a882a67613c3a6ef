"""The edge office's Prometheus agent (issue 20): rendered by real Helm from values-edge.yaml,
its configuration accepted by the real `promtool check config --agent` (Debian package
`prometheus`), its write-ahead log on a persistent volume, and its targets the release's own
Services, so the monitoring centre gets an office's metrics after an outage."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "motcua"
EDGE = {"ward": {"id": "dn-hai-chau"}, "identityUrl": "https://motcua.danang.example"}
RECEIVER = "https://prometheus.danang.example/api/v1/write"
WITH_AGENT = {**EDGE, "prometheusAgent": {"remoteWrite": {"url": RECEIVER, "existingSecret": "agent-remote-write",
                                                          "caConfigMap": "monitoring-centre-ca"}}}


@pytest.fixture(scope="module")
def release(render):
    return render("values-edge.yaml", values=WITH_AGENT)


@pytest.fixture(scope="module")
def config(release) -> dict:
    return yaml.safe_load(release.get("ConfigMap", "motcua-agent")["data"]["prometheus.yml"])


def test_promtool_accepts_the_agents_configuration(release, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing: install the Debian package `prometheus` (.ci/run does)")
    text = release.get("ConfigMap", "motcua-agent")["data"]["prometheus.yml"]
    # The credential and CA files live where the pod mounts them; here, beside the copy.
    for mounted in ("/etc/prometheus/remote-write/password", "/etc/prometheus/remote-write-ca/ca.crt"):
        assert mounted in text
        local = tmp_path / mounted.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("x\n")
        text = text.replace(mounted, str(local))
    (tmp_path / "prometheus.yml").write_text(text, encoding="utf-8")
    result = subprocess.run([promtool, "check", "config", "--agent", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    # The check can fail: an agent has no rules, and promtool says so.
    broken = yaml.safe_load(text)
    broken["rule_files"] = ["rules.yml"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    refused = subprocess.run([promtool, "check", "config", "--agent", str(tmp_path / "broken.yml")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0


def test_the_wal_is_on_a_volume_and_sent_to_the_centre_labelled_with_the_ward(release, config):
    agent = release.get("StatefulSet", "motcua-agent")
    [container] = agent["spec"]["template"]["spec"]["containers"]
    assert "--agent" in container["args"]
    assert "--storage.agent.path=/prometheus" in container["args"]
    assert "--storage.agent.retention.max-time=36h" in container["args"]
    [claim] = agent["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/prometheus"} in container["volumeMounts"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "4Gi"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    [remote] = config["remote_write"]
    assert remote["url"] == RECEIVER
    assert remote["basic_auth"] == {"username": "dn-hai-chau", "password_file": "/etc/prometheus/remote-write/password"}
    assert config["global"]["external_labels"] == {"platform": "motcua", "ward_id": "dn-hai-chau"}
    assert "rule_files" not in config and "alerting" not in config, "the centre evaluates the rules"
    # A changed configuration restarts the pod (a ConfigMap mounted as a directory is not re-read).
    assert agent["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_it_scrapes_every_service_of_the_office_and_its_broker_as_the_centre_does(release, config):
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"motcua-api", "motcua-worker", "motcua-relay", "motcua-broker", "motcua-broker-queues"}
    services = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in release.of_kind("Service")}
    for name, job in jobs.items():
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert int(port) in services.get(host, set()), f"{name}: {target} is no Service of the release"
    by_service = {static["labels"]["motcua_service"] for static in jobs["motcua-worker"]["static_configs"]}
    assert by_service == {"queue", "rating"}
    assert jobs["motcua-api"]["relabel_configs"][0]["replacement"] == "/${1}/metrics"
    assert jobs["motcua-broker-queues"]["params"]["family"] == ["queue_coarse_metrics", "queue_consumer_count"]
    # The metrics ports of the release let the agent in.
    agent_labels = release.get("StatefulSet", "motcua-agent")["spec"]["selector"]["matchLabels"]
    for policy in release.of_kind("NetworkPolicy"):
        if policy["metadata"]["name"] in ("motcua-agent", "motcua-mongodb"):
            continue
        peers = [peer for rule in policy["spec"].get("ingress", []) for peer in rule.get("from", [])
                 if any(p.get("port") in ("metrics", "http") for p in rule.get("ports", []))]
        assert {"podSelector": {"matchLabels": agent_labels}} in peers, policy["metadata"]["name"]


def test_the_agents_manifests_are_valid_kubernetes(helm, release):
    report = helm.lint(str(CHART), release.values, strict=True, kube_version="v1.30.0")
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    agent = [m for m in release.manifests if m["metadata"]["name"] == "motcua-agent"]
    assert {m["kind"] for m in agent} == {"ConfigMap", "ServiceAccount", "StatefulSet", "NetworkPolicy"}
    for manifest in agent:
        kubernetes_validate.validate(manifest, "1.30.0", strict=True)


def test_without_a_receiver_there_is_no_agent_and_the_notes_say_so(render):
    release = render("values-edge.yaml", values=EDGE)
    assert "motcua-agent" not in release.names("StatefulSet")
    assert "prometheusAgent.remoteWrite.url" in release.notes
