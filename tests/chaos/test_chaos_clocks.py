"""Fault: the clocks of two API processes a few seconds apart.

Two real API processes (`motcua api`, gunicorn) share one database: office A's clock runs
SKEW seconds ahead (started under libfaketime: `faketime -f +Ns`, which shifts what the
process reads as the wall clock and nothing else), office B's is right. A citizen's
tickets are issued at A and at B in turn, and called at B and at A in turn.

Checked:
- a token minted by A's identity (issued, to B, SKEW seconds in the future) is accepted by
  B: auth.CLOCK_LEEWAY_SECONDS;
- the ward's events leave the outbox in the order they were written, whichever process
  wrote them: every TicketIssued in ticket-number order, each ticket's TicketCalled after
  its TicketIssued. Before the outbox ordered by a per-ward sequence (outbox._next_seq),
  it ordered by the writer's wall clock, and B's events, written later, went out first;
- lost / duplicated / unexpected over the tickets acknowledged (201) against the
  TicketIssued events that reached the broker: zeros.

The relay runs once the writes are done, so every event is pending at once: the order the
relay chooses is then the outbox's order alone, not the timing of its polls."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace

import pika
import pytest
import requests

from motcua_common import topology
from motcua_common.demo import DEMO_STAFF_PASSWORD
from motcua_common.events import parse_envelope
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import pending_count
from motcua_common.relay import Relay
from motcua_platform.embedded import free_port
from motcua_testing.chaos import drain, wait_until
from motcua_testing.fixtures import settings_env

WARD = "dn-hai-chau"
SINK = "chaos.clocks.queue-events"
SKEW = 4  # seconds A's clock runs ahead: "a few seconds", well inside the leeway


class ApiProcess:
    """`motcua api` in a process of its own, its wall clock `skew` seconds off."""

    def __init__(self, env: dict, args: list[str], skew: int = 0, identity: str | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "motcua_platform.cli", "api", *args, "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1", "--threads", "4"]
        env = dict(env)
        if identity is None:  # this process serves identity: its keys are its own
            identity = self.base
        env.update(IDENTITY_URL=identity, JWKS_URL=f"{identity}/identity/.well-known/jwks.json")
        if skew:
            # libfaketime moves the monotonic clock by the same offset, which changes no
            # interval. (Keeping it true, DONT_FAKE_MONOTONIC=1, makes Python's time.sleep
            # fail with EINVAL under libfaketime 0.9.10.)
            command = [shutil.which("faketime"), "-f", f"{skew:+d}s", *command]
        self.process = subprocess.Popen(command, env=env, start_new_session=True)

    def ready(self, health: str) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"the API process exited with code {self.process.returncode} (its log is above)")
        try:
            return requests.get(self.base + health, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def terminate(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        if self.process.poll() is None:
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def offices(broker_settings):
    """(A, B): A serves every API SKEW seconds ahead; B serves queue's with the right time
    and takes the token keys from A's identity."""
    if shutil.which("faketime") is None:
        pytest.fail("the clock fault needs Debian's faketime package (.ci/run installs it)")
    from motcua_identity.bootstrap import prepare as prepare_identity
    from motcua_queue.bootstrap import prepare as prepare_queue

    prepare_identity(broker_settings, demo=True)
    prepare_queue(broker_settings, demo=True)
    env = settings_env(broker_settings)
    env["MOTCUA_LOG_LEVEL"] = "WARNING"
    a = ApiProcess(env, ["--all"], skew=SKEW)
    b = ApiProcess(env, ["--service", "queue"], identity=a.base)
    try:
        assert wait_until(lambda: a.ready("/identity/healthz") and b.ready("/queue/healthz"), timeout=60), \
            "both API processes answer"
        yield a, b
    finally:
        a.terminate()  # both at once: each takes a few seconds to wind down
        b.terminate()
        a.stop()
        b.stop()


def test_two_api_processes_with_clocks_apart(broker_settings, offices, service_db, checker):
    check = checker("clocks of two API processes apart",
                    f"tickets issued and called at A ({SKEW:+d} s) and B (0 s) in turn, one ward")
    a, b = offices
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    channel = connection.channel()
    topology.declare(channel, broker_settings)
    channel.queue_declare(SINK, durable=True)
    channel.queue_bind(SINK, "queue.events", routing_key="#")
    connection.close()

    # Minted by A's identity: to B the token is issued SKEW seconds from now.
    r = requests.post(f"{a.base}/identity/api/v1/sessions",
                      json={"username": "canbo.haichau", "password": DEMO_STAFF_PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    officer = {"Authorization": f"Bearer {r.json()['access_token']}"}

    issued = []  # ticket numbers, in the order the ward issued them
    for i in range(8):
        office = (a, b)[i % 2]
        r = requests.post(f"{office.base}/queue/api/v1/wards/{WARD}/tickets",
                          json={"service_code": "A", "priority": "normal"}, headers=officer, timeout=10)
        assert r.status_code == 201, f"{office.base}: {r.status_code} {r.text}"  # B accepts A's fresh token
        check.ack(r.json()["ticket_id"])
        issued.append(r.json()["number"])
    counter = next(c["counter_id"] for c in requests.get(
        f"{b.base}/queue/api/v1/wards/{WARD}/counters", timeout=5).json() if "A" in c["service_codes"])
    called, called_ids = [], []
    for i in range(4):
        # B calls while A serves, then the other way round: each ticket's TicketCalled is
        # written by the office whose clock is behind the one that wrote its TicketIssued, or
        # its TicketServed by the one behind the caller.
        caller, server = ((b, a), (a, b))[i % 2]
        r = requests.post(f"{caller.base}/queue/api/v1/wards/{WARD}/counters/{counter}/call-next",
                          headers=officer, timeout=10)
        assert r.status_code == 200, f"{caller.base}: {r.status_code} {r.text}"
        ticket = r.json()
        called.append(ticket["number"])
        called_ids.append(ticket["ticket_id"])
        r = requests.post(f"{server.base}/queue/api/v1/tickets/{ticket['ticket_id']}/actions",
                          json={"action": "serve"}, headers=officer, timeout=10)
        assert r.status_code == 200, f"{server.base}: {r.status_code} {r.text}"
    # Which ticket is called is the queue's rule (it ranks by the time of issue each API
    # process stamped); what is checked below is only that each one's events keep their order.
    assert len(set(called)) == 4, f"four tickets called: {called}"

    settings = replace(broker_settings)
    client = connect(settings)
    queue_db = service_database(client, settings, "queue")
    relay = Relay(queue_db, settings, "queue")
    try:
        assert wait_until(lambda: relay.publish_pending() == 0 and pending_count(queue_db) == 0, timeout=30)
    finally:
        relay.close()
        client.close()

    order = []  # (type, number) in the order the broker received them
    for _headers, body in drain(broker_settings.amqp_url, SINK):
        event = parse_envelope(json.loads(body))
        check.deliveries += 1
        if event.type == "TicketIssued":
            check.observe(event["ticket_id"])
        if event.type in ("TicketIssued", "TicketCalled"):
            order.append((event.type, event["number"]))
        elif event.type == "TicketServed":
            order.append((event.type, event["ticket_id"]))

    assert not check.lost and not check.duplicated and not check.unexpected, check.line()
    published_issued = [n for t, n in order if t == "TicketIssued"]
    assert published_issued == issued, f"TicketIssued left in the ward's order: {published_issued} vs {issued}"
    for number, ticket_id in zip(called, called_ids):
        assert order.index(("TicketIssued", number)) < order.index(("TicketCalled", number)) \
            < order.index(("TicketServed", ticket_id)), f"{number}'s events out of order: {order}"
