"""docker-compose.yml, read as Docker Compose reads it (YAML with anchors and merge keys):
every service role is there, starts in order on health, runs hardened, and no credential is
written in the repository. (No Docker engine here: nothing is started.)"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
SERVICES = ("identity", "dossier", "queue", "notify", "rating")
ROLES = ("api", "worker", "relay")
ONE_SHOT = "no"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def motcua_services(services):
    return {name: svc for name, svc in services.items() if str(svc.get("image", "")).startswith("motcua:")}


def test_every_service_role_is_present_and_runs_its_command(services):
    for service in SERVICES:
        assert services[f"{service}-prepare"]["command"] == ["prepare", "--service", service]
        assert services[f"{service}-api"]["command"] == ["api", "--service", service, "--host", "0.0.0.0", "--port", "8080"]
        for role in ("worker", "relay"):
            assert services[f"{service}-{role}"]["command"] == [role, "--service", service]
    assert {"mongodb", "rabbitmq", "prometheus", "grafana", "gateway"} <= set(services)


def test_long_running_services_have_healthchecks_and_one_shots_do_not_restart(services):
    for name, svc in services.items():
        if svc.get("restart") == ONE_SHOT:
            assert "healthcheck" not in svc, name
        else:
            assert svc["restart"] == "unless-stopped", name
            assert svc["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_apis_report_ready_workers_and_relays_report_alive(services):
    for service in SERVICES:
        api_check = " ".join(services[f"{service}-api"]["healthcheck"]["test"])
        assert f"http://127.0.0.1:8080/{service}/readyz" in api_check
        for role in ("worker", "relay"):
            assert "http://127.0.0.1:9100/metrics" in " ".join(services[f"{service}-{role}"]["healthcheck"]["test"])
            assert services[f"{service}-{role}"]["environment"]["METRICS_PORT"] == "9100"


def test_everything_waits_on_health_or_completion(services):
    for name, svc in services.items():
        for dependency, condition in (svc.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            target = services[dependency]
            if target.get("restart") == ONE_SHOT:
                assert condition == {"condition": "service_completed_successfully"}, (name, dependency)
            else:
                assert condition == {"condition": "service_healthy"}, (name, dependency)
                assert "healthcheck" in target, dependency
    for service in SERVICES:
        for role in ROLES:
            needs = services[f"{service}-{role}"]["depends_on"]
            assert {"mongodb", "rabbitmq", f"{service}-prepare"} <= set(needs), (service, role)


def test_start_order_has_no_cycle(services):
    done: set[str] = set()
    pending = dict(services)
    while pending:
        ready = [n for n, s in pending.items() if set(s.get("depends_on") or {}) <= done]
        assert ready, f"cycle among {sorted(pending)}"
        for name in ready:
            done.add(name)
            del pending[name]


def test_mongodb_runs_an_initiated_replica_set(services):
    mongodb = services["mongodb"]
    assert mongodb["command"][:2] == ["--replSet", "rs0"]
    check = " ".join(mongodb["healthcheck"]["test"])
    assert "rs.initiate" in check and "myState === 1" in check
    assert mongodb["depends_on"] == {"mongodb-keyfile": {"condition": "service_completed_successfully"}}


def test_rabbitmq_has_the_plugins_the_platform_needs(services):
    plugins = (COMPOSE_DIR / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8")
    for plugin in ("rabbitmq_prometheus", "rabbitmq_management", "rabbitmq_shovel"):
        assert plugin in plugins
    assert "./deploy/compose/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" in services["rabbitmq"]["volumes"]


def test_one_image_built_once_for_every_motcua_container(services):
    motcua = motcua_services(services)
    assert len(motcua) == len(SERVICES) * 4 + 1  # prepare, api, worker, relay per service, and demo
    builders = [name for name, svc in motcua.items() if "build" in svc]
    assert builders == ["identity-prepare"] and motcua["identity-prepare"]["build"]["context"] == "."
    assert {svc["image"] for svc in motcua.values()} == {"motcua:${MOTCUA_VERSION:-0.1.0}"}


def test_containers_run_hardened(services):
    for name, svc in services.items():
        assert svc.get("read_only") is True, name
        assert svc.get("cap_drop") == ["ALL"] and not svc.get("cap_add"), name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        if "user" in svc:
            assert not svc["user"].startswith("0"), name
    for name, svc in motcua_services(services).items():
        assert svc["user"] == "10001:10001", name


def test_only_the_gateway_listens_beyond_this_host(services):
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if name == "gateway":
                assert port == "8080:8080"
            else:
                assert port.startswith("127.0.0.1:"), (name, port)


def test_no_credential_is_written_in_the_repository(compose, services):
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert not re.search(r"[a-z+]+://[^/\s'\"@]*:[^/\s'\"@]*@", text), "a URL with credentials"
    for name, svc in services.items():
        environment = svc.get("environment") or {}
        for key in environment:
            if re.search(r"PASSWORD|PASS$|SECRET|TOKEN|_KEY$|MONGO_URL|AMQP_URL", key):
                pytest.fail(f"{name}: {key} is set inline; it belongs in deploy/compose/secrets/")
        for env_file in svc.get("env_file", []):
            assert env_file.startswith("deploy/compose/secrets/"), (name, env_file)
    assert "secrets/" in (COMPOSE_DIR / ".gitignore").read_text(encoding="utf-8").split()


def test_every_mounted_file_exists(services):
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)


def test_the_gateway_routes_each_service_and_keeps_metrics_inside():
    config = (COMPOSE_DIR / "nginx.conf").read_text(encoding="utf-8")
    for service in SERVICES:
        assert re.search(rf"location /{service}/ +{{ proxy_pass http://{service}; }}", config), service
        assert re.search(rf"upstream {service} +{{ server {service}-api:8080; }}", config), service
    assert "location ~ ^/[a-z]+/metrics$ { return 404; }" in config


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory):
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell on this machine")
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    first = subprocess.run([sh, str(COMPOSE_DIR / "make-secrets.sh"), str(folder)], capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    return folder


def read_env(path: Path) -> dict:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#"))
    return dict(pairs)


def test_make_secrets_writes_every_env_file_compose_reads(services, made_secrets):
    wanted = {Path(f).name for svc in services.values() for f in svc.get("env_file", [])}
    assert wanted == {p.name for p in made_secrets.iterdir()}
    for path in made_secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_made_secrets_agree_with_each_other(made_secrets):
    mongodb = read_env(made_secrets / "mongodb.env")
    rabbitmq = read_env(made_secrets / "rabbitmq.env")
    motcua = read_env(made_secrets / "motcua.env")
    assert len(mongodb["MONGO_INITDB_ROOT_PASSWORD"]) == 32
    assert motcua["MONGO_URL"] == (f"mongodb://{mongodb['MONGO_INITDB_ROOT_USERNAME']}:{mongodb['MONGO_INITDB_ROOT_PASSWORD']}"
                                   "@mongodb:27017/?replicaSet=rs0&authSource=admin")
    assert motcua["AMQP_URL"] == f"amqp://{rabbitmq['RABBITMQ_DEFAULT_USER']}:{rabbitmq['RABBITMQ_DEFAULT_PASS']}@rabbitmq:5672/%2F"
    passwords = [mongodb["MONGO_INITDB_ROOT_PASSWORD"], rabbitmq["RABBITMQ_DEFAULT_PASS"], motcua["MOTCUA_ADMIN_PASSWORD"],
                 motcua["SMS_INBOUND_TOKEN"], motcua["SMS_DELIVERY_TOKEN"], motcua["SMS_REPORT_SIGNING_KEY"],
                 read_env(made_secrets / "grafana.env")["GF_SECURITY_ADMIN_PASSWORD"]]
    assert len(set(passwords)) == len(passwords)


def test_make_secrets_never_overwrites(made_secrets):
    before = {p.name: p.read_bytes() for p in made_secrets.iterdir()}
    again = subprocess.run([shutil.which("sh"), str(COMPOSE_DIR / "make-secrets.sh"), str(made_secrets)],
                           capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert before == {p.name: p.read_bytes() for p in made_secrets.iterdir()}


def test_online_fees_are_off_on_one_docker_host(services):
    """The local payment provider takes no money: compose never runs it."""
    for name in ("dossier-api", "dossier-worker"):
        assert services[name]["environment"]["PAYMENT_PROVIDER"] == "none"
