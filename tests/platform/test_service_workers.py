"""Several worker processes per service in `motcua up` (--service-workers, MOTCUA_SERVICE_WORKERS):
what SPEC may say, the children and scrape targets it makes, and a real platform whose two
queue workers both consume from the same queues."""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from motcua_platform import cli, launcher
from motcua_platform.launcher import MAX_SERVICE_WORKERS, service_workers

ALL_ONE = {"identity": 1, "dossier": 1, "queue": 1, "notify": 1, "rating": 1}


# ---------------------------------------------------------------- SPEC
def test_by_default_every_service_runs_one_worker():
    assert service_workers(None) == service_workers("") == service_workers("  ") == ALL_ONE


def test_a_number_is_for_every_service_and_a_list_names_some():
    assert service_workers("3") == {service: 3 for service in ALL_ONE}
    assert service_workers(" queue = 2 , dossier=3 ") == {**ALL_ONE, "queue": 2, "dossier": 3}
    assert service_workers(f"notify={MAX_SERVICE_WORKERS}")["notify"] == MAX_SERVICE_WORKERS


@pytest.mark.parametrize("spec, said", [
    ("queu=2", "no service is called 'queu'"),
    ("queue=two", "must be a whole number, not 'two'"),
    ("queue=2.5", "must be a whole number, not '2.5'"),
    ("two", "neither a number"),
    ("queue", "neither a number"),
    ("0", "between 1 and 16, not 0"),
    ("queue=-1", "between 1 and 16, not -1"),
    (str(MAX_SERVICE_WORKERS + 1), "between 1 and 16, not 17"),
    ("queue=2,queue=3", "queue is named twice"),
    ("queue=2,", "an empty item is not SERVICE=N"),
    ("=2", "'=2' is not SERVICE=N"),
])
def test_a_wrong_spec_is_refused_with_what_is_wrong(spec, said):
    with pytest.raises(ValueError, match=re.escape(said)) as refused:
        service_workers(spec, source="--service-workers")
    assert str(refused.value).startswith("--service-workers: ")


# ---------------------------------------------------------------- the option and the variable
@pytest.fixture
def started(monkeypatch):
    """What `motcua up` would have started with, without starting anything."""
    asked = {}

    def up(port, demo, host="127.0.0.1", workers=None):
        asked["workers"] = workers
        return 0

    monkeypatch.setattr(launcher, "up", up)
    monkeypatch.delenv("MOTCUA_SERVICE_WORKERS", raising=False)
    return asked


def test_the_option_wins_over_the_variable(started, monkeypatch):
    assert cli.main(["up"]) == 0 and started["workers"] == ALL_ONE
    monkeypatch.setenv("MOTCUA_SERVICE_WORKERS", "queue=2")
    assert cli.main(["up"]) == 0 and started["workers"] == {**ALL_ONE, "queue": 2}
    assert cli.main(["up", "--service-workers", "dossier=3"]) == 0
    assert started["workers"] == {**ALL_ONE, "dossier": 3}


@pytest.mark.parametrize("option, variable, said", [
    (["--service-workers", "queu=2"], None, "--service-workers: no service is called 'queu'"),
    ([], "queue=0", "MOTCUA_SERVICE_WORKERS: queue's worker processes must be between 1 and 16, not 0"),
    (["--service-workers", "2", "--profile", "edge", "--ward", "w", "--upstream", "amqp://x", "--central", "http://c"],
     None, "--service-workers is for the central platform"),
])
def test_a_wrong_spec_is_bad_usage_before_anything_starts(started, monkeypatch, capsys, option, variable, said):
    if variable is not None:
        monkeypatch.setenv("MOTCUA_SERVICE_WORKERS", variable)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["up", *option])
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
    assert started == {}


# ---------------------------------------------------------------- the children
def platform_with(tmp_path, monkeypatch, workers):
    offered = iter(range(46_000, 46_100))
    monkeypatch.setattr(launcher, "free_port", lambda: next(offered))
    platform = launcher.Platform(port=45_999, demo=True, workers=workers)
    platform.env = {"MOTCUA_DATA_DIR": str(tmp_path)}
    return platform


def scrape_targets(tmp_path) -> list[dict]:
    return json.loads((Path(tmp_path) / "prometheus-targets.json").read_text())


def test_one_worker_each_is_todays_platform(tmp_path, monkeypatch):
    children = platform_with(tmp_path, monkeypatch, None)._children()
    assert [c.name for c in children] == ["api"] + [f"{s}-{role}" for s in ALL_ONE for role in ("worker", "relay")]
    for target in scrape_targets(tmp_path):
        assert set(target["labels"]) <= {"service", "role", "__metrics_path__"}
    workers = [t["labels"] for t in scrape_targets(tmp_path) if t["labels"]["role"] == "worker"]
    assert sorted(w["service"] for w in workers) == sorted(ALL_ONE)


def test_each_extra_worker_is_a_child_of_its_own_with_its_own_metrics_port(tmp_path, monkeypatch):
    platform = platform_with(tmp_path, monkeypatch, {**ALL_ONE, "queue": 2, "dossier": 3})
    children = platform._children()
    names = [c.name for c in children]
    assert [n for n in names if n.startswith("queue-")] == ["queue-worker-1", "queue-worker-2", "queue-relay"]
    assert [n for n in names if n.startswith("dossier-")] == [
        "dossier-worker-1", "dossier-worker-2", "dossier-worker-3", "dossier-relay"]
    assert "notify-worker" in names and len(names) == len(set(names)) == 1 + 5 + 5 + 3
    queue_workers = [c for c in children if c.name.startswith("queue-worker")]
    assert all(c.argv[-3:] == ["worker", "--service", "queue"] for c in queue_workers)

    ports = [c.metrics_port for c in children if c.metrics_port is not None]
    assert len(ports) == len(set(ports)) == len(children) - 1 and platform.port not in ports

    targets = scrape_targets(tmp_path)
    by_port = {int(t["targets"][0].rsplit(":", 1)[1]): t["labels"] for t in targets if t["labels"]["role"] != "api"}
    assert {by_port[c.metrics_port]["worker"] for c in queue_workers} == {"1", "2"}
    assert all(by_port[c.metrics_port] == {"service": "queue", "role": "worker", "worker": str(n)}
               for n, c in enumerate(queue_workers, start=1))
    relay = next(c for c in children if c.name == "queue-relay")
    assert by_port[relay.metrics_port] == {"service": "queue", "role": "relay"}
    # Every (service, role, worker) once: Prometheus keeps each process's series apart.
    keys = [tuple(sorted(labels.items())) for labels in by_port.values()]
    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------- a real platform
WARD = "dn-hai-chau"
TICKETS = 8


def consumers_of(amqp_url: str, queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    finally:
        connection.close()


def consumed(port: int, event_type: str) -> dict[str, float]:
    """A worker's motcua_events_consumed_total for one event type, by outcome."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for labels, value in re.findall(r"^motcua_events_consumed_total\{([^}]*)\} (\S+)$", text, re.M):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if fields.get("event_type") == event_type:
            found[fields["outcome"]] = found.get(fields["outcome"], 0) + float(value)
    return found


def queue_workers_of(pid: int) -> set[int]:
    """The live `motcua worker --service queue` children of a process."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            argv = (stat.parent / "cmdline").read_bytes().decode().rstrip("\0").split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and argv[-3:] == ["worker", "--service", "queue"]:
            found.add(int(stat.parent.name))
    return found


def test_two_queue_workers_share_the_queue_services_events(broker_settings, service_db, tmp_path):
    from motcua_common import topology
    from motcua_testing.fixtures import RunningPlatform, settings_env, wait_for

    env = {**settings_env(broker_settings), "MOTCUA_SERVICE_WORKERS": "queue=2"}
    platform = RunningPlatform(env, tmp_path / "platform.log")
    started = time.monotonic()
    base = platform.start(timeout=120)
    try:
        ready_after = time.monotonic() - started
        first_pids = queue_workers_of(platform.process.pid)
        assert len(first_pids) == 2

        targets = [t for t in scrape_targets(tmp_path)
                   if t["labels"]["service"] == "queue" and t["labels"]["role"] == "worker"]
        ports = {t["labels"]["worker"]: int(t["targets"][0].rsplit(":", 1)[1]) for t in targets}
        assert sorted(ports) == ["1", "2"]

        # Both subscribe to the queue service's consumer queues (the workers start beside
        # the APIs: readiness does not wait for them).
        issued_queue = topology.subscription("queue", "TicketIssued").queue
        wait_for(lambda: consumers_of(broker_settings.amqp_url, issued_queue) == 2, timeout=60,
                 message=f"two consumers on {issued_queue}")

        service = requests.get(f"{base}/queue/api/v1/wards/{WARD}/services", timeout=30).json()[0]
        tickets = []
        for _ in range(TICKETS):
            answer = requests.post(f"{base}/queue/api/v1/wards/{WARD}/tickets",
                                   json={"service_code": service["code"], "priority": "normal"}, timeout=30)
            assert answer.status_code == 201, answer.text
            tickets.append(answer.json()["ticket_id"])

        def processed_by_each():
            counts = [consumed(ports[n], "TicketIssued").get("processed", 0) for n in ("1", "2")]
            return counts if sum(counts) == TICKETS else None

        by_worker = wait_for(processed_by_each, timeout=30, message=f"{TICKETS} TicketIssued processed")
        # The broker hands a queue's messages to its consumers in turn: both took some.
        assert all(count > 0 for count in by_worker), by_worker
        assert sum(consumed(ports[n], "TicketIssued").get("duplicate", 0) for n in ("1", "2")) == 0

        # Each ticket once in the queue service's activity read model, whichever worker took it.
        db = service_db("queue")
        lines = list(db["ticket_activity"].find({"_id": {"$in": tickets}}))
        assert len(lines) == TICKETS and all(line.get("issued") == 1 for line in lines)
        assert db["processed_events"].count_documents({"type": "TicketIssued"}) == TICKETS

        # Each is supervised on its own: one killed is restarted, the other goes on.
        killed = min(first_pids)
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: len(pids := queue_workers_of(platform.process.pid)) == 2 and killed not in pids,
                 timeout=30, message="the killed queue worker restarted")
        wait_for(lambda: consumers_of(broker_settings.amqp_url, issued_queue) == 2, timeout=60,
                 message=f"two consumers on {issued_queue} again")
        assert re.search(r"queue-worker-[12] exited with code -9", (tmp_path / "platform.log").read_text())
        print(f"ready after {ready_after:.0f} s; TicketIssued per queue worker: {by_worker}")
    finally:
        assert platform.stop() == 0, (tmp_path / "platform.log").read_text()[-3000:]
