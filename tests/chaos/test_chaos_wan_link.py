"""Fault 4: the ward's WAN link is cut while the office serves, then flaps.

The office is the real `motcua up --profile edge` on a broker of its own (a second
RabbitMQ node); the centre is the main broker. The link between them is a TCP relay the
test cuts: the shovel's connection is reset and reconnecting is refused, exactly what a
dropped line does. The centre's identity (its JWKS) goes down with the link, so officers
at the counters are verified with the keys the office keeps on disk.

Checked: every ticket the kiosk issued (HTTP 201) and every ticket an officer served
reaches the centre, each taking effect once through an idempotent consumer, and the
events of the office arrive in the order they happened."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from urllib.parse import urlparse

import pika
import pytest
import requests

from motcua_common import topology
from motcua_common.chaos import WanLink, drain, wait_until
from motcua_common.consumer import handle_once
from motcua_common.edge import UPLINKS, BrokerControl, wait_for_shovels
from motcua_common.embedded import free_port
from motcua_common.events import parse_envelope
from motcua_common.testing import settings_env

WARD = "dn-hai-chau"
SINK = "chaos.centre.office-events"


class Office:
    """`motcua up --profile edge` as a subprocess, for one ward."""

    def __init__(self, env: dict, port: int, upstream: str, central: str):
        self.env, self.port, self.upstream, self.central = env, port, upstream, central
        self.process: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 90) -> "Office":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motcua_common.cli", "up", "--profile", "edge", "--demo", "--ward", WARD,
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


def test_office_serves_with_its_link_cut_and_the_centre_gets_everything_once(
        settings, centre, wan, node_vhost, rabbit_node, jwks_server, signing_key, service_db, checker, tmp_path):
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
        run_the_day(office, wan, jwks_server, signing_key, centre, service_db, checker)
    finally:
        office.stop()


def run_the_day(office, wan, jwks_server, signing_key, centre, service_db, checker):
    issued = checker("4. WAN link cut, then flapping",
                     "kiosk tickets and counter service at one office: 8 s cut, 3 flaps")
    served = checker("4. WAN link cut (served tickets)", "officers serving at 2 counters during the cut")
    officer = {"Authorization": "Bearer " + signing_key.issue("officer-lan", "officer", WARD, 600)}
    counters = [c["counter_id"] for c in requests.get(
        f"{office.base}/queue/api/v1/wards/{WARD}/counters", timeout=5).json() if "A" in c["service_codes"]][:2]
    assert counters, "the demo ward has counters"

    def take_tickets(n: int):
        for _ in range(n):
            r = requests.post(f"{office.base}/queue/api/v1/wards/{WARD}/tickets",
                              json={"service_code": "A", "priority": "normal"}, timeout=10)
            assert r.status_code == 201, r.text  # the office never stops for the WAN
            issued.ack(r.json()["ticket_id"])

    def serve(counter_id: str) -> None:
        r = requests.post(f"{office.base}/queue/api/v1/wards/{WARD}/counters/{counter_id}/call-next",
                          headers=officer, timeout=10)
        assert r.status_code in (200, 204), r.text  # the token is verified with the keys on disk
        if r.status_code == 204:
            return  # nobody waiting for this counter just now
        ticket_id = r.json()["ticket_id"]
        r = requests.post(f"{office.base}/queue/api/v1/tickets/{ticket_id}/actions",
                          json={"action": "serve"}, headers=officer, timeout=10)
        assert r.status_code == 200, r.text
        served.ack(ticket_id)

    take_tickets(10)
    # The link drops, and the centre's identity with it.
    wan.cut()
    jwks_server.stop()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        take_tickets(3)
        for counter_id in counters:
            serve(counter_id)
        time.sleep(0.3)
    backlog = sum(rabbit_node_backlog(office).values())
    assert backlog > 0, "with the link down the office's events wait in its uplink queues"
    # Then it flaps: up for a moment, down again, while the office keeps working.
    for _ in range(3):
        wan.restore()
        take_tickets(4)
        time.sleep(1.5)
        wan.cut()
        take_tickets(4)
        time.sleep(1.0)
    wan.restore()
    take_tickets(5)

    db = service_db("centre")
    seen_order: list[tuple[str, int]] = []

    def collect() -> bool:
        for _headers, body in drain(centre.amqp_url, SINK):
            event = parse_envelope(json.loads(body))
            issued.deliveries += 1
            if event.type == "TicketIssued":
                seen_order.append((event["service_code"], event["number"]))

            def effect(session, event=event):
                db.effects.insert_one({"event_id": event.event_id, "type": event.type,
                                       "ticket_id": event.payload.get("ticket_id")}, session=session)

            handle_once(db, "centre", event, effect)
        got_issued = {d["ticket_id"] for d in db.effects.find({"type": "TicketIssued"})}
        got_served = {d["ticket_id"] for d in db.effects.find({"type": "TicketServed"})}
        return issued.acknowledged <= got_issued and served.acknowledged <= got_served

    wait_until(collect, timeout=45, interval=1.0)
    for doc in db.effects.find({"type": {"$in": ["TicketIssued", "TicketServed"]}}):
        (issued if doc["type"] == "TicketIssued" else served).observe(doc["ticket_id"])

    for c in (issued, served):
        assert not c.lost, f"{c.fault}: lost {sorted(c.lost)[:5]}"
        assert not c.duplicated, f"{c.fault}: duplicated {sorted(c.duplicated)[:5]}"
        assert not c.unexpected, f"{c.fault}: unexpected {sorted(c.unexpected)[:5]}"
    assert wan.cuts == 4
    # In order: the first arrival of each ticket number comes after the one before it.
    first_seen = []
    for key in seen_order:
        if key not in first_seen:
            first_seen.append(key)
    numbers = [n for code, n in first_seen if code == "A"]
    assert numbers == sorted(numbers), f"tickets reached the centre out of order: {numbers}"


def rabbit_node_backlog(office) -> dict:
    from motcua_common.edge import uplink_backlog

    connection = pika.BlockingConnection(pika.URLParameters(office.env["AMQP_URL"]))
    try:
        return uplink_backlog(connection.channel())
    finally:
        connection.close()
