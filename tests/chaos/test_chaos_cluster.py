"""Fault: a three-node RabbitMQ cluster loses a node under load, quorum queues throughout.

Three local nodes joined in one cluster (motcua_testing.cluster, started once for the
module, side by side) behind one address, as a Kubernetes Service puts one in front of the
RabbitMQ Cluster Operator's pods. On it:
- a kiosk issuing tickets through the queue API; the real relay (`motcua relay`)
  publishing TicketIssued with confirms into a quorum queue;
- identity's real worker answering RPC (`ward`), asked in a loop as dossier asks it, from
  outside a worker (motcua_common.rpc.call, a new reply queue per call), and asked through
  a probe worker's RpcProxy as notify asks it (a reply queue per worker process);
and the node that holds everything — every connection, queue and leader is placed on it
by the front door — killed (kill -9, a power cut).

Checked, like the other faults: every acknowledged ticket reaches the queue and takes
effect once through an idempotent consumer (lost / duplicated / unexpected: zeros); every
RPC call is answered, rightly, once the cluster has elected new leaders — within
RPC_RECOVERY seconds. Before identity's request queue was a quorum queue
(motcua_common.nameko_rpc) it was a classic queue on the lost node, and no call was
answered until that node came back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pika
import pytest

from motcua_common import rpc, topology
from motcua_common.consumer import handle_once
from motcua_common.events import parse_envelope
from motcua_common.outbox import pending_count
from motcua_testing.chaos import RabbitNode, drain, wait_until
from motcua_testing.cluster import RabbitCluster
from motcua_testing.fixtures import settings_env
from motcua_testing.kiosk import Kiosk

WARD = "dn-hai-chau"
SINK = "chaos.cluster.ticket-events"
RPC_RECOVERY = 20.0
SUPPORT = str(Path(__file__).resolve().parents[1] / "support")  # motcua_testing, for the probe worker  # seconds from the node's loss until identity answers again

_TODAY = datetime.now(timezone.utc).date()
_MONDAY_9AM = datetime.combine(_TODAY + timedelta(days=7 - _TODAY.weekday()), datetime.min.time(),
                               timezone.utc).replace(hour=2)


@pytest.fixture(scope="module")
def cluster():
    if not RabbitNode.available():
        pytest.fail("the cluster fault needs root and the rabbitmq-server package (.ci/run installs it)")
    started = RabbitCluster().start()
    yield started
    started.remove()


class Process:
    """`motcua <role> --service <service>` as a subprocess."""

    def __init__(self, settings, role: str, service: str, **extra_env: str):
        env = settings_env(settings)
        env["MOTCUA_LOG_LEVEL"] = "ERROR"
        env.update(extra_env)
        self.process = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", role, "--service", service],
                                        env=env, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Asker:
    """Calls identity's `ward` over and over, each call retried until answered (a read),
    as dossier does before it takes a dossier. Keeps when each call failed and each was
    answered."""

    def __init__(self, settings, service: str, method: str):
        self.settings, self.service, self.method = settings, service, method
        self.answered: list[tuple[float, dict | None]] = []  # (when, answer)
        self.failed_at: list[float] = []
        self.abandoned = 0
        self.errors: list[str] = []  # anything but an answer or RpcUnavailable: a 500 in an API
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Asker":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            while True:
                try:
                    answer = rpc.call(self.settings, self.service, self.method, WARD, timeout=3)
                    self.answered.append((time.monotonic(), answer))
                    break
                except rpc.RpcUnavailable:
                    self.failed_at.append(time.monotonic())
                except Exception as exc:  # noqa: BLE001 - counted, and the test fails on it
                    self.errors.append(repr(exc)[:300])
                if self._stop.wait(0.2):
                    self.abandoned += 1
                    return
            self._stop.wait(0.1)

    def answered_after(self, moment: float) -> list[float]:
        return [when for when, _ in self.answered if when > moment]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def test_an_older_classic_rpc_queue_becomes_quorum_unless_still_consumed(cluster):
    """Upgrading: nameko made rpc-<service> a classic queue. Unconsumed (every worker
    stopped) it is replaced by a quorum queue, stale requests and all; still consumed by an
    older worker (a rolling upgrade) it is kept as it is, never taken from under it."""
    from motcua_common.nameko_rpc import quorum_request_queue

    vhost = f"upgrade-{uuid.uuid4().hex[:8]}"
    url = cluster.add_vhost(vhost)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare("rpc-stopped", durable=True)
        channel.basic_publish("", "rpc-stopped", b"a request nobody waits for any more")
        channel.queue_declare("rpc-running", durable=True)
        channel.basic_consume("rpc-running", lambda *_: None)
        assert quorum_request_queue(url, "rpc-stopped") is True
        assert quorum_request_queue(url, "rpc-running") is False
        queues = cluster.queues(vhost)
        assert [queues[q]["type"] for q in ("rpc-stopped", "rpc-running")] == ["quorum", "classic"]
    finally:
        connection.close()


def test_a_node_lost_under_load(settings, verifier, token, cluster, service_db, checker):
    check = checker("a cluster node lost under load",
                    "a kiosk issuing tickets, the relay publishing to a quorum queue, RPC to identity; "
                    "the node leading them killed (kill -9)")
    vhost = f"cluster-{uuid.uuid4().hex[:8]}"
    office = replace(settings, amqp_url=cluster.add_vhost(vhost), queue_type="quorum")
    from motcua_identity.bootstrap import prepare as prepare_identity
    from motcua_queue.api import create_app
    from motcua_queue.bootstrap import prepare as prepare_queue

    prepare_identity(office, demo=True)
    prepare_queue(office, demo=True)
    victim = cluster.nodes[0]
    cluster.front_door.prefer(victim.port)
    identity = Process(office, "worker", "identity")
    probe = Process(office, "worker", "notify", MOTCUA_WORKER_MODULE="motcua_testing.rpc_probe",
                    PYTHONPATH=os.pathsep.join([SUPPORT, os.environ.get("PYTHONPATH", "")]))
    relay = kiosk = app = None
    askers = []
    try:
        assert wait_until(lambda: _answers(office, "identity", "ward") and _answers(office, "rpc_probe", "relay_ward"),
                          timeout=40), "identity and the probe answer RPC through the cluster"
        connection = pika.BlockingConnection(pika.URLParameters(office.amqp_url))
        channel = connection.channel()
        topology.declare(channel, office)
        channel.queue_declare(SINK, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(SINK, "queue.events", routing_key="TicketIssued")
        connection.close()
        queues = cluster.queues(vhost)
        assert queues["rpc-identity"]["type"] == "quorum", f"identity's RPC request queue: {queues['rpc-identity']}"
        probe_replies = next(name for name in queues if name.startswith("rpc.reply-rpc_probe-"))
        for name in ("rpc-identity", "rpc-rpc_probe", SINK, probe_replies):
            assert cluster.home_of(vhost, name) is victim, f"{name} lives on the node to be lost"

        app = create_app(office, verifier=verifier, clock=lambda: _MONDAY_9AM)
        relay = Process(office, "relay", "queue")
        kiosk = Kiosk(app, WARD, token("officer", WARD, subject="officer-lan")).start()
        askers = [Asker(office, "identity", "ward").start(), Asker(office, "rpc_probe", "relay_ward").start()]
        queue_db = service_db("queue")
        assert wait_until(lambda: kiosk.count() >= 20 and all(len(a.answered) >= 5 for a in askers), timeout=30), \
            "load before the loss"
        victim.kill()
        lost_at = time.monotonic()
        assert wait_until(lambda: all(len(a.answered_after(lost_at)) >= 5 for a in askers),
                          timeout=RPC_RECOVERY + 10), \
            f"RPC answered again after the node's loss: {[(a.service, len(a.failed_at)) for a in askers]}"
        first_answers = {a.service: a.answered_after(lost_at)[0] - lost_at for a in askers}
        issued_at_loss = kiosk.count()
        assert wait_until(lambda: kiosk.count() >= issued_at_loss + 10, timeout=20), "tickets after the loss"
        for part in (*askers, kiosk):
            part.stop()
        assert wait_until(lambda: pending_count(queue_db) == 0, timeout=60), "the relay emptied the outbox"
    finally:
        # Whatever failed above: no thread or process of the test outlives it.
        for part in (*askers, kiosk, relay, identity, probe):
            if part is not None:
                part.stop()
        cluster.front_door.prefer(None)
        if app is not None:
            app.extensions["motcua"].mongo_client.close()

    centre = service_db("centre")
    for _headers, body in drain(office.amqp_url, SINK):
        event = parse_envelope(json.loads(body))
        check.deliveries += 1
        handle_once(centre, "centre", event, lambda session, event=event: centre.effects.insert_one(
            {"event_id": event.event_id, "ticket_id": event["ticket_id"]}, session=session))
    for ticket_id in kiosk.tickets.values():
        check.ack(ticket_id)
    for doc in centre.effects.find():
        check.observe(doc["ticket_id"])
    for a in askers:
        outage = max([t for t in a.failed_at if t > lost_at], default=lost_at) - lost_at
        print(f"\nRPC {a.service}.{a.method}: {len(a.answered)} calls answered, {len(a.failed_at)} failed attempts, "
              f"first answer {first_answers[a.service]:.1f} s after the loss, last failure {outage:.1f} s after")
    print(f"tickets {dict(kiosk.statuses)}")
    assert not check.lost, f"lost: {sorted(check.lost)[:5]}"
    assert not check.duplicated, f"duplicated effects: {sorted(check.duplicated)[:5]}"
    assert not check.unexpected, f"unexpected: {sorted(check.unexpected)[:5]}"
    for a in askers:
        assert not a.errors, f"{a.service}: errors that are neither an answer nor RpcUnavailable: {a.errors[:3]}"
        assert all(answer and answer.get("ward_id") == WARD for _, answer in a.answered), f"{a.service}'s answers"
        assert a.abandoned == 0, f"every call to {a.service} was answered"
        assert first_answers[a.service] < RPC_RECOVERY, f"{a.service} answered {first_answers[a.service]:.1f} s after"
    # The vhost is left to go with the cluster: deleting it waits on the lost node's replicas.


def _answers(settings, service: str, method: str) -> bool:
    try:
        return rpc.call(settings, service, method, WARD, timeout=2) is not None
    except rpc.RpcUnavailable:
        return False
