"""The restore drill (CONTRACT.md "Backup and restore"): a running platform is backed up,
keeps working, is lost; the backup goes into a new, stopped platform's empty data. After
it: accounts, dossiers and signed results are all there, and no ticket number already
issued that day is issued again — not even one issued after the backup was taken.

Where RabbitMQ nodes of its own can run here (root, RabbitMQ's server), the two platforms are
the two sites of docs/runbooks/standby-site.md, each on its own broker: the standby's
federating the lost site's event exchanges with the runbook's upstream and policy
(deploy/standby/drill.py's own functions, so the drill script is tested too), the events it
received archived at the failover, and the restored platform started on it."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from motcua_common import demo
from motcua_testing.fixtures import RunningPlatform, create_vhost, delete_vhost, wait_for
from motcua_testing.forms import fill_form

pytestmark = pytest.mark.e2e
WARD = "tn-song-cong"
ADMIN_PASSWORD = "quan-tri-2026-sao-luu"


REPO = Path(__file__).resolve().parents[2]


def load_drill():
    spec = importlib.util.spec_from_file_location("motcua_standby_drill", REPO / "deploy" / "standby" / "drill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


drill = load_drill()


def motcua(*args, env):
    return subprocess.run([sys.executable, "-m", "motcua_platform.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def login(base, username, password):
    answer = requests.post(f"{base}/identity/api/v1/sessions", json={"username": username, "password": password},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def take_ticket(base, service_code):
    answer = requests.post(f"{base}/queue/api/v1/wards/{WARD}/tickets",
                           json={"service_code": service_code, "priority": "normal"}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["number"]


@pytest.fixture
def brokers():
    """The two sites' brokers (RabbitMQ nodes on ports of their own, started side by side), or
    None where this machine cannot run them (the restore is then checked on vhosts of the
    machine's broker alone)."""
    if os.geteuid() != 0 or not os.path.exists(drill.RABBITMQ_SERVER) or shutil.which("runuser") is None:
        yield None
        return
    work = Path(tempfile.mkdtemp(prefix="motcua-standby-"))
    os.chmod(work, 0o755)  # the nodes run as `rabbitmq`
    nodes = (drill.StandbyBroker(work / "central", role="central"), drill.StandbyBroker(work / "standby"))
    try:
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(node.start) for node in nodes]:
                started.result()
        yield nodes
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda node: node.stop(), nodes))
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def platforms(tmp_path):
    vhosts, running = [], []

    def start(data_dir, amqp_url=None):
        if amqp_url is None:
            vhost = f"motcua-restore-{uuid.uuid4().hex[:8]}"
            vhosts.append(vhost)
            amqp_url = create_vhost(vhost)
        env = dict(os.environ, AMQP_URL=amqp_url, MOTCUA_DATA_DIR=str(data_dir),
                   MOTCUA_ADMIN_PASSWORD=ADMIN_PASSWORD, MOTCUA_RELAY_POLL_SECONDS="0.1")
        env.pop("MONGO_URL", None)
        platform = RunningPlatform(env, data_dir.parent / f"{data_dir.name}.log")
        running.append(platform)
        return platform, platform.start(), env

    yield start
    for platform in running:
        platform.stop()
    for vhost in vhosts:
        delete_vhost(vhost)


def test_a_backup_restores_everything_and_never_reissues_a_ticket_number(brokers, platforms, tmp_path):
    central_broker, standby_broker = brokers or (None, None)
    first, base, env = platforms(tmp_path / "site-a", amqp_url=central_broker and central_broker.url())
    if standby_broker is not None:
        drill.federate(standby_broker, central_broker.url())  # the standby pulls the site's events from now on
        consumer_queues = [q for q in standby_broker.queues() if drill.re_consumer_queue(q)]
    service = requests.get(f"{base}/queue/api/v1/wards/{WARD}/services", timeout=30).json()[0]
    before = [take_ticket(base, service["code"]) for _ in range(3)]

    # A citizen, a dossier and its signed result.
    officer = login(base, "canbo.songcong", demo.DEMO_STAFF_PASSWORD)
    # Registered at the counter (the officer saw the CCCD card): active at once.
    registered = requests.post(f"{base}/identity/api/v1/citizens", timeout=30, headers=officer, json={
        "national_id": "019093001122", "full_name": "Lý Thị Sao", "date_of_birth": "1993-04-09",
        "phone": "0912 334 455", "ward_id": WARD, "password": "sao-luu-song-cong"})
    assert registered.status_code == 201, registered.text
    citizen = login(base, "019093001122", "sao-luu-song-cong")
    admin = login(base, "admin", ADMIN_PASSWORD)
    procedure = next(p for p in requests.get(f"{base}/dossier/api/v1/procedures", timeout=30).json()
                     if p["level"] == 2)  # counter-only: filed by the officer on the citizen's behalf
    dossier = requests.post(f"{base}/dossier/api/v1/dossiers", headers=officer, timeout=30, json={
        "procedure_code": procedure["code"], "ward_id": WARD, "citizen_national_id": "019093001122",
        "form": fill_form(procedure)})
    assert dossier.status_code == 201, dossier.text
    dossier = dossier.json()
    actions = f"{base}/dossier/api/v1/dossiers/{dossier['dossier_id']}/actions"
    for action in ("receive", "start_processing"):
        assert requests.post(actions, headers=officer, json={"action": action}, timeout=30).status_code == 200
    approved = requests.post(actions, headers=admin, json={"action": "approve"}, timeout=60)
    assert approved.status_code == 200, approved.text
    result = requests.get(f"{base}/dossier/api/v1/dossiers/{dossier['dossier_id']}/result", headers=citizen, timeout=60)
    assert result.status_code == 200 and result.content.startswith(b"%PDF")

    backup_dir = tmp_path / "backup"
    done = motcua("backup", str(backup_dir), env=env)
    assert done.returncode == 0, done.stderr
    assert (backup_dir / "manifest.json").exists()
    after_backup = [take_ticket(base, service["code"]) for _ in range(2)]   # on slips, not in the backup
    if standby_broker is not None:
        # Every ticket's TicketIssued reached the standby's queues (the ones after the backup too).
        wait_for(lambda: standby_broker.held(consumer_queues) >= len(before) + len(after_backup), timeout=60,
                 message="the tickets' events at the standby")
    assert first.stop() == 0
    if standby_broker is not None:
        # The failover's step 2: what the links brought is kept aside, the consumer queues empty.
        archived = drill.archive(standby_broker)
        assert archived >= len(before) + len(after_backup)
        assert standby_broker.held(consumer_queues) == 0

    # The lost site's backup into a new, stopped platform's empty data.
    new_site = tmp_path / "site-b"
    restore_env = {**env, "MOTCUA_DATA_DIR": str(new_site)}
    done = motcua("restore", str(backup_dir), env=restore_env)
    assert done.returncode == 0, done.stderr + done.stdout
    again = motcua("restore", str(backup_dir), env=restore_env)
    assert again.returncode == 1 and "not empty" in again.stderr, "a restore never merges into data that is there"

    _, base, _ = platforms(new_site, amqp_url=standby_broker.url() if standby_broker is not None else None)
    citizen = login(base, "019093001122", "sao-luu-song-cong")
    mine = requests.get(f"{base}/dossier/api/v1/dossiers/{dossier['dossier_id']}", headers=citizen, timeout=30)
    assert mine.status_code == 200 and mine.json()["receipt_code"] == dossier["receipt_code"]
    restored = requests.get(f"{base}/dossier/api/v1/dossiers/{dossier['dossier_id']}/result", headers=citizen, timeout=60)
    assert restored.status_code == 200 and restored.content == result.content
    verified = requests.post(f"{base}/dossier/api/v1/results/verify", data=restored.content, timeout=60,
                             headers={"Content-Type": "application/pdf"}).json()
    assert verified["valid"] and verified["receipt_code"] == dossier["receipt_code"]

    issued = set(before + after_backup)
    next_numbers = [take_ticket(base, service["code"]) for _ in range(3)]
    assert not issued & set(next_numbers), f"reissued after the restore: {issued & set(next_numbers)}"
    assert next_numbers[0] == f"{service['prefix']}{3 + 100 + 1:03d}"
