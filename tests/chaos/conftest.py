"""Fixtures of the fault tests.

Why a second RabbitMQ node and not a second virtual host: the faults are of a broker
(restarted, killed) and of the link between two brokers (a shovel crossing a WAN that
drops). A vhost cannot be restarted alone and a shovel between two vhosts of one node
never crosses a network; a node of its own (about 6 s to start, once per session) can be
killed like a power cut without disturbing the machine's main broker, which everybody
else's tests use. The centre stays the main broker (a fresh vhost per test).

The WAN tests (faults 4 and 5) share a ward office: `edge_office` is the real
`motcua up --profile edge` for one ward on the second node, its shovels reaching the centre
through `wan`, a relay the test cuts or degrades; `office_work` drives its kiosk and
counters, `centre_arrivals` consumes at the centre what the office sent.

Every test reports its checker (lost / duplicated / unexpected, like rabbitmq/jepsen's);
the session prints them together at the end."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from functools import partial
from urllib.parse import urlparse

import pika
import pytest
import requests

from motcua_common import topology
from motcua_testing.centre_keys import JwksServer
from motcua_testing.chaos import Checker, RabbitNode, WanLink, drain
from motcua_common.consumer import handle_once
from motcua_platform.edge import UPLINKS, BrokerControl, wait_for_shovels
from motcua_platform.embedded import free_port
from motcua_common.events import parse_envelope
from motcua_testing.fixtures import settings_env

WARD = "dn-hai-chau"
SINK = "chaos.centre.office-events"

REPORTS: list[Checker] = []


@pytest.fixture(scope="session")
def rabbit_node():
    if not RabbitNode.available():
        pytest.skip("a second RabbitMQ node needs root and the rabbitmq-server package")
    node = RabbitNode().start()
    yield node
    node.remove()


@pytest.fixture
def node_vhost(rabbit_node):
    """A fresh vhost on the second node; its AMQP URL."""
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    rabbit_node.ctl("add_vhost", name)
    rabbit_node.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield rabbit_node.url(name), name
    try:
        rabbit_node.ctl("delete_vhost", name)
    except Exception:
        pass  # the node may be down at the end of a failed test


@pytest.fixture
def checker(request):
    made: list[Checker] = []

    def make(fault: str, load: str) -> Checker:
        c = Checker(fault, load)
        made.append(c)
        return c

    yield make
    for c in made:
        REPORTS.append(c)
        print("\n" + c.line())


def pytest_terminal_summary(terminalreporter):
    if not REPORTS:
        return
    terminalreporter.section("faults: lost / duplicated effects / unexpected")
    for c in REPORTS:
        terminalreporter.write_line(c.line())


@pytest.fixture
def jwks_server(signing_key):
    server = JwksServer(signing_key.jwks()).start()
    yield server
    server.stop()



# ---------------------------------------------------------------- a ward office across a WAN
class Office:
    """`motcua up --profile edge` as a subprocess, for one ward."""

    def __init__(self, env: dict, port: int, upstream: str, central: str):
        self.env, self.port, self.upstream, self.central = env, port, upstream, central
        self.process: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 90) -> Office:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motcua_platform.cli", "up", "--profile", "edge", "--demo", "--ward", WARD,
             "--port", str(self.port), "--upstream", self.upstream, "--central", self.central],
            env=self.env, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        ready = threading.Event()

        def read():
            for line in self.process.stdout:
                if line.startswith("motcua ready"):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.5):
            if self.process.poll() is not None:
                pytest.fail(f"the edge office exited with code {self.process.returncode} (its log is above)")
            if time.monotonic() > deadline:
                break
        if not ready.is_set():
            self.stop()
            pytest.fail(f"the edge office did not become ready in {timeout:.0f} s")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def centre(broker_settings):
    """The central broker (a vhost of the main node) with a queue that collects everything
    the office's exchanges bring."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    channel = connection.channel()
    topology.declare(channel, broker_settings)
    channel.queue_declare(SINK, durable=True)
    for uplink in UPLINKS:
        channel.queue_bind(SINK, uplink.exchange, routing_key="#")
    connection.close()
    return broker_settings


@pytest.fixture
def wan(centre):
    central = urlparse(centre.amqp_url)
    link = WanLink(central.hostname, central.port or 5672).start()
    yield link
    link.close()


def upstream_through(link: WanLink, amqp_url: str) -> str:
    vhost = amqp_url.rsplit("/", 1)[1]
    return f"amqp://guest:guest@127.0.0.1:{link.port}/{vhost}"


@pytest.fixture
def edge_office(settings, centre, wan, node_vhost, rabbit_node, jwks_server, tmp_path):
    """The ward's office on the second node, its shovels running to the centre through `wan`."""
    edge_url, _vhost = node_vhost
    office_settings = replace(settings, amqp_url=edge_url, db_prefix=settings.db_prefix + "edge_",
                              data_dir=tmp_path / "office")
    env = settings_env(office_settings)
    env["RABBITMQ_NODENAME"] = rabbit_node.name
    env["MOTCUA_LOG_LEVEL"] = "WARNING"
    office = Office(env, free_port(), upstream_through(wan, centre.amqp_url), jwks_server.url).start()
    try:
        states = wait_for_shovels(BrokerControl(rabbit_node.name))
        assert all(states.get(u.shovel) == "running" for u in UPLINKS), states
        yield office
    finally:
        office.stop()


class OfficeWork:
    """The office's day as the WAN tests drive it: kiosk tickets (each 201 acknowledged in
    `issued`) and officers calling and serving at two counters (each served ticket in
    `served`). `statuses` counts every answer the office gave."""

    def __init__(self, office: Office, signing_key, issued: Checker, served: Checker):
        self.office, self.issued, self.served = office, issued, served
        self.officer = {"Authorization": "Bearer " + signing_key.issue("officer-lan", "officer", WARD, 600)}
        self.statuses: Counter = Counter()
        self.counters = [c["counter_id"] for c in requests.get(
            f"{office.base}/queue/api/v1/wards/{WARD}/counters", timeout=5).json() if "A" in c["service_codes"]][:2]
        assert self.counters, "the demo ward has counters"

    def _post(self, path: str, **kwargs) -> requests.Response:
        r = requests.post(f"{self.office.base}{path}", timeout=10, **kwargs)
        self.statuses[r.status_code] += 1
        return r

    def take_tickets(self, n: int) -> None:
        for _ in range(n):
            r = self._post(f"/queue/api/v1/wards/{WARD}/tickets", json={"service_code": "A", "priority": "normal"})
            assert r.status_code == 201, r.text  # the office never stops for the WAN
            self.issued.ack(r.json()["ticket_id"])

    def serve(self, counter_id: str) -> None:
        r = self._post(f"/queue/api/v1/wards/{WARD}/counters/{counter_id}/call-next", headers=self.officer)
        assert r.status_code in (200, 204), r.text  # the token is verified with the keys on disk
        if r.status_code == 204:
            return  # nobody waiting for this counter just now
        ticket_id = r.json()["ticket_id"]
        r = self._post(f"/queue/api/v1/tickets/{ticket_id}/actions", json={"action": "serve"}, headers=self.officer)
        assert r.status_code == 200, r.text
        self.served.ack(ticket_id)

    def serve_at_counters(self) -> None:
        for counter_id in self.counters:
            self.serve(counter_id)


@pytest.fixture
def office_work(edge_office, signing_key):
    """OfficeWork(issued, served) for the running office."""
    return partial(OfficeWork, edge_office, signing_key)


class CentreArrivals:
    """The centre's side: everything the office's shovels brought, taken from the sink queue
    through an idempotent consumer (handle_once remembers event ids, as the centre's services
    do), so a message sent again after a lost ack takes effect once."""

    def __init__(self, amqp_url: str, db, issued: Checker, served: Checker):
        self.amqp_url, self.db, self.issued, self.served = amqp_url, db, issued, served
        self.ticket_order: list[tuple[str, int]] = []  # (service code, number) of each TicketIssued delivery

    def collect(self) -> bool:
        """Consume what has arrived; True once every acknowledged ticket and service took effect."""
        for _headers, body in drain(self.amqp_url, SINK):
            event = parse_envelope(json.loads(body))
            self.issued.deliveries += 1
            if event.type == "TicketIssued":
                self.ticket_order.append((event["service_code"], event["number"]))

            def effect(session, event=event):
                self.db.effects.insert_one({"event_id": event.event_id, "type": event.type,
                                            "ticket_id": event.payload.get("ticket_id")}, session=session)

            handle_once(self.db, "centre", event, effect)
        got_issued = {d["ticket_id"] for d in self.db.effects.find({"type": "TicketIssued"})}
        got_served = {d["ticket_id"] for d in self.db.effects.find({"type": "TicketServed"})}
        return self.issued.acknowledged <= got_issued and self.served.acknowledged <= got_served

    def observe(self) -> None:
        """Each effect at the centre, into its checker."""
        for doc in self.db.effects.find({"type": {"$in": ["TicketIssued", "TicketServed"]}}):
            (self.issued if doc["type"] == "TicketIssued" else self.served).observe(doc["ticket_id"])

    def first_arrivals(self, service_code: str) -> list[int]:
        """The ticket numbers of a service in the order each first reached the centre."""
        first_seen = []
        for key in self.ticket_order:
            if key not in first_seen:
                first_seen.append(key)
        return [n for code, n in first_seen if code == service_code]


@pytest.fixture
def centre_arrivals(centre, service_db):
    """CentreArrivals(issued, served) for the test's centre."""
    return partial(CentreArrivals, centre.amqp_url, service_db("centre"))
