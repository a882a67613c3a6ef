"""Fault 7: a resource alarm on the broker (disk, then memory) blocks publishers, then clears.

A broker short of disk or memory raises an alarm and blocks every connection that publishes:
it sends connection.blocked and stops reading from the socket, so the publishes already
written wait there and their confirms come only when the alarm clears. The alarm is raised
on the second RabbitMQ node (the machine's main broker, which other tests use, is never
alarmed) by setting its disk free limit or memory watermark out of reach, and always set
back to what it was, even when the test fails: the node serves the session's other faults.

The office is the queue service's API (its Flask app, called from kiosk threads) writing
through its transactional outbox, and the real relay (run_forever in a thread) publishing
to the alarmed node; downstream, a sink queue consumed idempotently (handle_once).

Checked during the alarm: the kiosks keep getting 201 (a ticket only touches the outbox),
none 5xx; the relay stays up, waits on its one connection without spinning and without
reconnecting (another connection would be blocked as well, and would leave a second copy
of the batch in the broker), marks sent only what the broker confirmed, says once that the
broker blocks it, with the reason, and shows it in motcua_relay_broker_blocked. Its confirm
timeout is made shorter than the alarm, so that a relay that took a blocked broker for a
dead one would show it. After the alarm: every acknowledged ticket's TicketIssued arrives
and takes effect once (the checker's lost / duplicated / unexpected)."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pika
import pytest
from motcua_common import relay as relay_module
from motcua_common import topology
from motcua_testing.chaos import drain, wait_until
from motcua_common.consumer import handle_once
from motcua_common.events import parse_envelope
from motcua_common.outbox import OUTBOX, pending_count
from motcua_common.relay import Relay
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare
from prometheus_client import REGISTRY

WARD = "dn-hai-chau"
SINK = "chaos.centre.ticket-events"
ALARM_SECONDS = 10
CONFIRM_TIMEOUT_SECONDS = 3  # shorter than the alarm: a relay that gives up on a blocked broker shows it

_TODAY = datetime.now(UTC).date()
# Next week's Monday, 09:00 in Đà Nẵng: the office is open. Never a fixed past date (the day's
# number counters expire through a TTL index and would restart the numbering mid-test).
_MONDAY = datetime.combine(_TODAY + timedelta(days=7 - _TODAY.weekday()), datetime.min.time(), UTC)


def monday_morning() -> datetime:
    return _MONDAY.replace(hour=2)


# ---------------------------------------------------------------- the alarm
def node_status(node) -> dict:
    return json.loads(node.ctl("status", "--formatter", "json"))


def alarms(node) -> set[str]:
    return {alarm["resource"] for alarm in node_status(node)["alarms"]}


def alarm_commands(resource: str, status: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """How to raise the alarm, and how to set the limit back to what the node had."""
    if resource == "disk":
        return ("set_disk_free_limit", "10000GB"), ("set_disk_free_limit", str(status["disk_free_limit"]))
    watermark = status["vm_memory_high_watermark_setting"]
    restore = (("set_vm_memory_high_watermark", str(watermark["relative"])) if "relative" in watermark
               else ("set_vm_memory_high_watermark", "absolute", str(watermark["absolute"])))
    return ("set_vm_memory_high_watermark", "0.0000001"), restore


@contextmanager
def resource_alarm(node, resource: str):
    raise_it, clear_it = alarm_commands(resource, node_status(node))
    try:
        node.ctl(*raise_it)
        assert wait_until(lambda: resource in alarms(node), timeout=30), f"the {resource} alarm did not go off"
        yield
    finally:
        # Always, whatever failed: the node is shared by the session's other fault tests.
        node.ctl(*clear_it)
        assert wait_until(lambda: not alarms(node), timeout=30), "the alarm did not clear"


# ---------------------------------------------------------------- the office
class Kiosks:
    """Threads issuing tickets until told to stop; every answer's status is kept, with the
    phase of the day it came in (before, during or after the alarm)."""

    def __init__(self, app, headers: dict, threads: int = 2):
        self.app, self.headers, self.threads = app, headers, threads
        self.phase = "before"
        self.statuses: Counter = Counter()
        self.issued: Counter = Counter()  # phase -> tickets acknowledged (201)
        self.tickets: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> Kiosks:
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def _run(self) -> None:
        client = self.app.test_client()
        while not self._stop.is_set():
            phase = self.phase
            r = client.post(f"/queue/api/v1/wards/{WARD}/tickets", json={"service_code": "A", "priority": "normal"},
                            headers=self.headers)
            with self._lock:
                self.statuses[(phase, r.status_code)] += 1
                if r.status_code == 201:
                    self.tickets.add(r.get_json()["ticket_id"])
                    self.issued[phase] += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)
        assert not any(w.is_alive() for w in self._workers), "a kiosk was still waiting for an answer"


class RelayThread:
    """The real relay, run_forever in a thread of this process, so that its CPU time and its
    log can be read."""

    def __init__(self, db, settings):
        self.relay = Relay(db, settings, "queue")
        self.thread = threading.Thread(target=self.relay.run_forever, daemon=True)

    def start(self) -> RelayThread:
        self.thread.start()
        return self

    def cpu_seconds(self) -> float:
        """User and system CPU time of the relay's thread so far."""
        with open(f"/proc/self/task/{self.thread.native_id}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.relay.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the relay did not stop"


class Centre:
    """The sink queue, consumed idempotently: each TicketIssued's effect stored once."""

    def __init__(self, amqp_url: str, db):
        self.amqp_url, self.db = amqp_url, db
        self.delivered: set[str] = set()
        self.deliveries = 0

    def consume(self) -> None:
        for _headers, body in drain(self.amqp_url, SINK):
            event = parse_envelope(json.loads(body))
            self.deliveries += 1
            self.delivered.add(event.event_id)
            if event.type == "TicketIssued":
                handle_once(self.db, "centre", event, lambda session, event=event: self.db.effects.insert_one(
                    {"event_id": event.event_id, "ticket_id": event["ticket_id"]}, session=session))


def declare_sink(amqp_url: str, settings) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        topology.declare(channel, settings)
        channel.queue_declare(SINK, durable=True)
        channel.queue_bind(SINK, "queue.events", routing_key="#")
    finally:
        connection.close()


def sent_event_ids(queue_db) -> set[str]:
    return {doc["envelope"]["event_id"] for doc in queue_db[OUTBOX].find({"status": "sent"}, {"envelope.event_id": 1})}


def blocked_gauge() -> float | None:
    return REGISTRY.get_sample_value("motcua_relay_broker_blocked", {"service": "queue"})


def relay_messages(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "motcua_common.relay" and text in r.getMessage()]


# ---------------------------------------------------------------- fault 7
@pytest.mark.parametrize("resource", ["disk", "memory"])
def test_a_resource_alarm_blocks_the_relay_and_the_office_keeps_issuing_tickets(
        resource, settings, verifier, token, node_vhost, rabbit_node, service_db, checker, caplog, monkeypatch):
    check = checker(f"7. broker {resource} alarm blocking publishers, then clearing",
                    f"2 kiosk threads issuing tickets; a {ALARM_SECONDS} s {resource} alarm on the relay's broker")
    caplog.set_level(logging.INFO, logger="motcua_common.relay")
    monkeypatch.setattr(relay_module, "CONFIRM_TIMEOUT_SECONDS", CONFIRM_TIMEOUT_SECONDS)
    node_url, _ = node_vhost
    office = replace(settings, amqp_url=node_url)
    declare_sink(node_url, office)
    prepare(office, demo=True)
    app = create_app(office, verifier=verifier, clock=monday_morning)
    queue_db = service_db("queue")
    centre = Centre(node_url, service_db("centre"))
    relay = RelayThread(queue_db, office).start()
    kiosks = Kiosks(app, token("officer", WARD, subject="officer-lan")).start()
    try:
        assert wait_until(lambda: kiosks.issued["before"] >= 10 and sent_event_ids(queue_db), timeout=20), \
            "the relay publishes before the alarm"
        connected_before = len(relay_messages(caplog, "relay connected"))
        with resource_alarm(rabbit_node, resource):
            kiosks.phase = "during"
            cpu_before = relay.cpu_seconds()
            time.sleep(ALARM_SECONDS)
            relay_cpu = relay.cpu_seconds() - cpu_before
            # What the relay marked sent, the broker had confirmed: it is in the sink queue
            # (a consumer may read during an alarm; only publishers are blocked).
            sent = sent_event_ids(queue_db)
            centre.consume()
            assert sent <= centre.delivered, f"marked sent without a confirm: {sorted(sent - centre.delivered)[:5]}"
            waiting = pending_count(queue_db)
            assert waiting > 0, "with publishers blocked the events wait in the outbox"
            assert relay.thread.is_alive(), "the relay survives the alarm"
            blocked_while = blocked_gauge()
            warnings = relay_messages(caplog, "blocking publishers")
            reconnects = len(relay_messages(caplog, "relay connected")) - connected_before
        kiosks.phase = "after"
        assert wait_until(lambda: kiosks.issued["after"] >= 10, timeout=20)
    finally:
        kiosks.stop()
    try:
        assert wait_until(lambda: pending_count(queue_db) == 0, timeout=30), "the relay emptied the outbox"
        blocked_after = blocked_gauge()
        all_clear = relay_messages(caplog, "accepts publishes again")
    finally:
        relay.stop()
        app.extensions["motcua"].mongo_client.close()
    centre.consume()
    check.deliveries = centre.deliveries

    print(f"\n{resource} alarm: {kiosks.issued['during']} tickets during it ({kiosks.issued['before']} before, "
          f"{kiosks.issued['after']} after); {waiting} events waiting at its end; relay CPU {relay_cpu:.2f} s "
          f"in {ALARM_SECONDS} s, {reconnects} reconnects; answers {dict(kiosks.statuses)}")
    assert not [s for s in kiosks.statuses if s[1] != 201], f"every ticket answered 201: {dict(kiosks.statuses)}"
    assert kiosks.issued["during"] > 0
    assert reconnects == 0, "a blocked broker is waited for on the same connection, not reconnected to"
    # A relay spinning on the blocked connection would burn the whole alarm in CPU.
    assert relay_cpu < ALARM_SECONDS * 0.2, f"the relay spun: {relay_cpu:.2f} s of CPU in {ALARM_SECONDS} s"
    assert len(warnings) == 1, f"one warning that the broker blocks publishers: {[r.getMessage() for r in warnings]}"
    assert f"low on {resource}" in warnings[0].getMessage(), "the warning gives the broker's reason"
    assert len(all_clear) == 1, "and one line when it accepts publishes again"
    assert blocked_while == 1 and blocked_after == 0, "motcua_relay_broker_blocked shows the alarm, then its end"

    for ticket_id in kiosks.tickets:
        check.ack(ticket_id)
    for doc in centre.db.effects.find():
        check.observe(doc["ticket_id"])
    assert not check.lost, f"lost: {sorted(check.lost)[:5]}"
    assert not check.duplicated, f"duplicated effects: {sorted(check.duplicated)[:5]}"
    assert not check.unexpected, f"unexpected: {sorted(check.unexpected)[:5]}"
    issued_events = queue_db[OUTBOX].count_documents({"envelope.type": "TicketIssued"})
    assert issued_events == len(kiosks.tickets), "one TicketIssued per acknowledged ticket"
