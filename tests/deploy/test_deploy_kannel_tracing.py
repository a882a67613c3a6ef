"""Kannel and tracing in the deployments: the chart with kannel and tracing on and off, the
compose profile `kannel`, the collector and Jaeger, and the Kannel image's entrypoint run
for real (Debian's bearerbox and smsbox). Workload hygiene and schema validation of the
Kannel-enabled renders run with every other combination in test_deploy_chart.py."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .test_deploy_compose import made_secrets, read_env  # noqa: F401  (fixture)
from .test_deploy_chart import COMBINATIONS, containers, pod_specs

REPO = Path(__file__).resolve().parents[2]
KANNEL_DIR = REPO / "deploy" / "kannel"
CHART_FILES = REPO / "deploy" / "helm" / "motcua" / "files" / "kannel"
TEMPLATES = ("kannel.conf.template", "smsc-smpp.conf.template")
KANNEL_ON = COMBINATIONS["central with Kannel, tracing to a collector"]
# Set by the entrypoint itself, or legitimately empty.
NOT_FROM_OUTSIDE = {"KANNEL_SMSC_CONF"}


def template_variables() -> set[str]:
    found = set()
    for name in TEMPLATES:
        found |= set(re.findall(r"\$\{(KANNEL_[A-Z_]+)\}", (KANNEL_DIR / name).read_text(encoding="utf-8")))
    return found - NOT_FROM_OUTSIDE


@pytest.fixture(scope="module")
def kannel_on(render):
    files, values = KANNEL_ON
    return render(*files, values=values)


@pytest.fixture(scope="module")
def kannel_off(render):
    return render("values-central.yaml")


def env_of(container) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def config(release) -> dict:
    return release.get("ConfigMap", "motcua")["data"]


# --- the chart ---------------------------------------------------------------------------

def test_kannel_and_tracing_are_off_by_default(kannel_off):
    assert not [m for m in kannel_off.manifests if "kannel" in m["metadata"]["name"]]
    data = config(kannel_off)
    assert "SMS_GATEWAY" not in data and not [k for k in data if k.startswith(("KANNEL_", "OTEL_"))]
    notify = kannel_off.get("Deployment", "motcua-notify-worker")["spec"]["template"]["spec"]["containers"][0]
    assert "KANNEL_SENDSMS_PASSWORD" not in env_of(notify)
    assert env_of(notify)["SMS_REPORT_SIGNING_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    for policy in kannel_off.of_kind("NetworkPolicy"):
        ports = {p.get("port") for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}
        assert 4318 not in ports, policy["metadata"]["name"]


def test_chart_templates_are_deploy_kannels_own():
    for name in TEMPLATES:
        assert (CHART_FILES / name).read_bytes() == (KANNEL_DIR / name).read_bytes(), (
            f"deploy/helm/motcua/files/kannel/{name} differs: cp deploy/kannel/{name} deploy/helm/motcua/files/kannel/")


def test_kannel_runs_bearerbox_and_smsbox_in_one_pod_with_every_setting(kannel_on):
    deployment = kannel_on.get("Deployment", "motcua-kannel")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["bearerbox", "smsbox"]
    settings = kannel_on.get("ConfigMap", "motcua-kannel")["data"]
    templates = kannel_on.get("ConfigMap", "motcua-kannel-templates")["data"]
    for name in TEMPLATES:
        assert templates[name] == (KANNEL_DIR / name).read_text(encoding="utf-8").rstrip("\n")
    assert settings["KANNEL_SMSC_HOST"] == "smsc.telco.example" and settings["KANNEL_SMSC_PORT"] == "2776"
    assert settings["KANNEL_INBOUND_URL"] == "http://motcua-identity-api:80/identity/api/v1/sms/kannel"
    assert settings["KANNEL_BEARERBOX_HOST"] == "127.0.0.1"
    for container in spec["containers"]:
        env = env_of(container)
        assert container["args"] == [container["name"]]
        assert container["envFrom"] == [{"configMapRef": {"name": "motcua-kannel"}}]
        # every variable the templates name comes from the settings or a Secret, none is left out
        assert template_variables() <= set(settings) | set(env), container["name"]
        for name in ("KANNEL_SMSC_SYSTEM_ID", "KANNEL_SMSC_PASSWORD", "KANNEL_SENDSMS_PASSWORD", "KANNEL_ADMIN_PASSWORD"):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "kannel-credentials", name
        assert env["KANNEL_INBOUND_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "motcua-identity", "key": "sms-inbound-token"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/var/lib/kannel"] == "state" and mounts["/etc/kannel/templates"] == "templates"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "motcua-kannel"
    assert kannel_on.get("PersistentVolumeClaim", "motcua-kannel")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_notify_sends_through_kannel_when_it_is_enabled(kannel_on):
    data = config(kannel_on)
    service = kannel_on.get("Service", "motcua-kannel")
    assert data["SMS_GATEWAY"] == "kannel"
    assert data["KANNEL_SENDSMS_URL"] == f"http://motcua-kannel:{service['spec']['ports'][0]['port']}/cgi-bin/sendsms"
    assert data["KANNEL_DLR_URL"] == "http://motcua-notify-api:80/notify/api/v1/kannel/dlr"
    assert data["KANNEL_SHORT_CODE"] == "8188"
    for role in ("api", "worker", "relay"):
        notify = kannel_on.get("Deployment", f"motcua-notify-{role}")["spec"]["template"]["spec"]["containers"][0]
        assert env_of(notify)["KANNEL_SENDSMS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "kannel-credentials", "key": "sendsms-password"}
        # One secret per job: notify holds the receipts' token and the report-signing key
        # (required with Kannel), never identity's inbound token.
        env = env_of(notify)
        assert env["SMS_DELIVERY_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "motcua-notify", "key": "sms-delivery-token", "optional": True}
        assert env["SMS_REPORT_SIGNING_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "motcua-notify", "key": "sms-report-signing-key", "optional": False}
        assert "SMS_INBOUND_TOKEN" not in env
    identity = kannel_on.get("Deployment", "motcua-identity-api")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(identity)["SMS_INBOUND_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "sms-inbound-token"
    assert "SMS_REPORT_SIGNING_KEY" not in env_of(identity) and "SMS_DELIVERY_TOKEN" not in env_of(identity)


def test_kannel_network_policy_admits_notify_and_reaches_only_what_it_must(kannel_on):
    policy = kannel_on.get("NetworkPolicy", "motcua-kannel")["spec"]
    assert policy["ingress"] == [{"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "motcua", "app.kubernetes.io/instance": "motcua",
        "motcua.vn/service": "notify", "app.kubernetes.io/component": "worker"}}}],
        "ports": [{"port": "sendsms", "protocol": "TCP"}]}]
    egress = policy["egress"]
    to_services = {rule["to"][0]["podSelector"]["matchLabels"].get("motcua.vn/service") for rule in egress
                   if "podSelector" in rule["to"][0] and "k8s-app" not in rule["to"][0]["podSelector"]["matchLabels"]}
    assert to_services == {"identity", "notify"}
    assert {"to": [{"ipBlock": {"cidr": "203.0.113.20/32"}}], "ports": [{"port": 2776, "protocol": "TCP"}]} in egress
    worker = kannel_on.get("NetworkPolicy", "motcua-notify-worker")["spec"]["egress"]
    assert any(rule.get("to", [{}])[0].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
               == "kannel" for rule in worker)
    # the SMS gateway's open egress (port 443 anywhere) is gone: Kannel is the gateway
    assert not [rule for rule in worker if "to" not in rule and {p["port"] for p in rule["ports"]} == {443, 80}]


def test_kannel_without_the_telcos_address_is_refused(helm, chart):
    with pytest.raises(helm.HelmRenderError, match="kannel.smsc.host is required"):
        chart.render(values={"kannel": {"enabled": True}}, name="motcua")


def test_tracing_sends_every_service_pod_to_the_collector(kannel_on):
    data = config(kannel_on)
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.monitoring:4318"
    assert data["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio" and data["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    for workload, spec in pod_specs(kannel_on):
        labels = workload["metadata"]["labels"]
        if "motcua.vn/service" not in labels:
            continue
        assert spec["containers"][0]["envFrom"] == [{"configMapRef": {"name": "motcua"}}]
        policy = kannel_on.get("NetworkPolicy", workload["metadata"]["name"])["spec"]
        assert {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                "ports": [{"port": 4318, "protocol": "TCP"}]} in policy["egress"], workload["metadata"]["name"]


def test_kannel_containers_run_as_the_images_user(kannel_on):
    dockerfile = (KANNEL_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^USER 10002:10002$", dockerfile, re.M)
    spec = kannel_on.get("Deployment", "motcua-kannel")["spec"]["template"]["spec"]
    for container in containers(spec):
        assert container["securityContext"]["runAsUser"] == 10002


# --- docker compose ----------------------------------------------------------------------

def image_environment() -> set[str]:
    """The settings the Kannel image sets itself (ENV in deploy/kannel/Dockerfile)."""
    return set(re.findall(r"\b(KANNEL_[A-Z_]+)=", (KANNEL_DIR / "Dockerfile").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def compose_services() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]


def test_kannel_is_a_compose_profile_built_from_deploy_kannel(compose_services, made_secrets):  # noqa: F811
    boxes = {name: svc for name, svc in compose_services.items() if name.startswith("kannel-")}
    assert set(boxes) == {"kannel-bearerbox", "kannel-smsbox"}
    for name, svc in boxes.items():
        assert svc["profiles"] == ["kannel"], name
        assert svc["command"] == [name.removeprefix("kannel-")]
        assert svc["image"] == "motcua-kannel:1.4.5" and svc["user"] == "10002:10002"
        assert svc["env_file"] == ["deploy/compose/secrets/kannel.env"]
        provided = set(svc["environment"]) | set(read_env(made_secrets / "kannel.env")) | image_environment()
        assert template_variables() <= provided, name
    assert boxes["kannel-bearerbox"]["build"] == {"context": "deploy/kannel"}
    assert boxes["kannel-smsbox"]["depends_on"] == {"kannel-bearerbox": {"condition": "service_healthy"}}
    assert boxes["kannel-smsbox"]["environment"]["KANNEL_BEARERBOX_HOST"] == "kannel-bearerbox"
    # nothing outside the profile depends on Kannel: `docker compose up` without it still starts
    for name, svc in compose_services.items():
        if "profiles" not in svc:
            assert not [d for d in svc.get("depends_on") or {} if d.startswith("kannel-")], name


def test_made_kannel_secrets_agree_with_notify_and_identity(made_secrets):  # noqa: F811
    kannel = read_env(made_secrets / "kannel.env")
    motcua = read_env(made_secrets / "motcua.env")
    assert kannel["KANNEL_SENDSMS_PASSWORD"] == motcua["KANNEL_SENDSMS_PASSWORD"] and len(kannel["KANNEL_SENDSMS_PASSWORD"]) == 32
    assert kannel["KANNEL_INBOUND_TOKEN"] == motcua["SMS_INBOUND_TOKEN"]
    # Kannel holds the inbound token only: the receipts' token and the report-signing key are notify's.
    assert motcua["SMS_REPORT_SIGNING_KEY"] not in kannel.values() and motcua["SMS_DELIVERY_TOKEN"] not in kannel.values()
    assert len({kannel["KANNEL_ADMIN_PASSWORD"], kannel["KANNEL_SENDSMS_PASSWORD"], kannel["KANNEL_INBOUND_TOKEN"]}) == 3
    assert kannel["KANNEL_SMSC_SYSTEM_ID"] == "" and kannel["KANNEL_SMSC_PASSWORD"] == ""  # the telco's, filled in by hand
    assert motcua["KANNEL_SENDSMS_URL"] == "http://kannel-smsbox:13013/cgi-bin/sendsms"
    assert motcua["KANNEL_DLR_URL"] == "http://notify-api:8080/notify/api/v1/kannel/dlr"
    assert "SMS_GATEWAY" not in motcua  # off until the operator turns the profile on


def test_every_service_role_sends_spans_to_the_collector_and_on_to_jaeger(compose_services):
    for name, svc in compose_services.items():
        if str(svc.get("image", "")).startswith("motcua:"):
            assert svc["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318", name
    collector = compose_services["otel-collector"]
    assert collector["depends_on"] == {"jaeger": {"condition": "service_healthy"}}
    assert "./deploy/compose/otel-collector.yaml:/etc/otelcol/config.yaml:ro" in collector["volumes"]
    pipeline = yaml.safe_load((REPO / "deploy" / "compose" / "otel-collector.yaml").read_text(encoding="utf-8"))
    assert pipeline["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    traces = pipeline["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and "batch" in traces["processors"]
    assert [pipeline["exporters"][e]["endpoint"] for e in traces["exporters"]] == ["jaeger:4317"]
    assert compose_services["jaeger"]["ports"] == ["127.0.0.1:16686:16686"]


# --- the Kannel image's entrypoint, run for real ------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def entrypoint_env(tmp_path: Path) -> dict:
    admin, boxes, sendsms = free_port(), free_port(), free_port()
    return {"PATH": os.environ["PATH"], "KANNEL_TEMPLATE_DIR": str(KANNEL_DIR),
            "KANNEL_CONF_DIR": str(tmp_path / "conf"), "KANNEL_STATE_DIR": str(tmp_path / "state"),
            "KANNEL_ADMIN_PORT": str(admin), "KANNEL_ADMIN_PASSWORD": "admin-pw", "KANNEL_SMSBOX_PORT": str(boxes),
            "KANNEL_SENDSMS_PORT": str(sendsms), "KANNEL_SENDSMS_USER": "motcua", "KANNEL_SENDSMS_PASSWORD": "send-pw",
            "KANNEL_SHORT_CODE": "8188", "KANNEL_INBOUND_URL": "http://127.0.0.1:9/identity/api/v1/sms/kannel",
            "KANNEL_INBOUND_TOKEN": "token", "KANNEL_BEARERBOX_HOST": "127.0.0.1",
            "KANNEL_SMSC_HOST": "127.0.0.1", "KANNEL_SMSC_PORT": str(free_port()), "KANNEL_SMSC_SYSTEM_ID": "motcua",
            "KANNEL_SMSC_PASSWORD": "smsc-pw", "KANNEL_SMSC_THROUGHPUT": "10"}


def test_entrypoint_refuses_a_token_that_does_not_fit_in_a_url(tmp_path):
    env = {**entrypoint_env(tmp_path), "KANNEL_INBOUND_TOKEN": "a@b/c"}
    run = subprocess.run(["sh", str(KANNEL_DIR / "entrypoint.sh"), "bearerbox"], env=env, capture_output=True,
                         text=True, timeout=10)
    assert run.returncode == 78 and "KANNEL_INBOUND_TOKEN" in run.stderr


def test_entrypoint_refuses_to_start_with_a_setting_missing(tmp_path):
    env = entrypoint_env(tmp_path)
    del env["KANNEL_SMSC_PASSWORD"], env["KANNEL_INBOUND_URL"]
    run = subprocess.run(["sh", str(KANNEL_DIR / "entrypoint.sh"), "bearerbox"], env=env, capture_output=True,
                         text=True, timeout=10)
    assert run.returncode == 78
    assert "KANNEL_INBOUND_URL" in run.stderr and "KANNEL_SMSC_PASSWORD" in run.stderr
    assert not (tmp_path / "conf").exists()
    wrong = subprocess.run(["sh", str(KANNEL_DIR / "entrypoint.sh"), "wapbox"], env=entrypoint_env(tmp_path),
                           capture_output=True, text=True, timeout=10)
    assert wrong.returncode == 64


@pytest.mark.skipif(not (shutil.which("bearerbox") or Path("/usr/sbin/bearerbox").exists())
                    or not shutil.which("envsubst"), reason="Debian's kannel and gettext-base (.ci/run installs them)")
def test_entrypoint_renders_the_templates_and_both_boxes_start(tmp_path):
    env = entrypoint_env(tmp_path)
    env["PATH"] = f"{env['PATH']}:/usr/sbin"
    procs = []
    try:
        procs.append(subprocess.Popen(["sh", str(KANNEL_DIR / "entrypoint.sh"), "bearerbox"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 20
        while not listening(int(env["KANNEL_SMSBOX_PORT"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(subprocess.Popen(["sh", str(KANNEL_DIR / "entrypoint.sh"), "smsbox"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while not listening(int(env["KANNEL_SENDSMS_PORT"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listening(int(env["KANNEL_SMSBOX_PORT"])) and listening(int(env["KANNEL_SENDSMS_PORT"]))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    rendered = (tmp_path / "conf" / "kannel.conf").read_text(encoding="utf-8")
    assert "${" not in rendered and f'include = "{tmp_path / "conf" / "smsc-smpp.conf"}"' in rendered
    # The inbound token rides as the service's name (the X-Kannel-Service header), not in the URL.
    assert 'post-url = "http://127.0.0.1:9/identity/api/v1/sms/kannel?id=%I"' in rendered
    assert 'name = "token"' in rendered
    assert "get-url =" not in rendered
    # The access log keeps no message text (%a %b %k %s) and no phone number (%p %P).
    [log_format] = re.findall(r"^access-log-format = (.*)$", rendered, re.M)
    assert not re.search(r"%[abkspPq]", log_format)
    smsc = (tmp_path / "conf" / "smsc-smpp.conf").read_text(encoding="utf-8")
    assert "smsc-password = smsc-pw" in smsc and 'system-type = ""' in smsc
    for path in (tmp_path / "conf").iterdir():
        assert path.stat().st_mode & 0o077 == 0, path.name  # passwords inside: the box's user only
