"""Fault: the database's disk full, then freed.

The database server (SecantusDB, with every commit synced as a majority write is
journaled) keeps its data on a small filesystem of its own (SmallDisk, a tmpfs). Kiosks
issue tickets through the queue service's API (its Flask app; every request carries an
Idempotency-Key and is retried with it after a 503 or 409, as the contract tells clients).
Then the disk fills: another file takes every free byte, and a bulk writer (attachments,
say) uses up what the database had set aside, until its storage engine fails.

A storage engine that cannot write its journal does not go on: mongod stops (its
supervisor — Kubernetes, `motcua up` — starts it again), SecantusDB stays up and answers
every command with an internal error until it is restarted. Either way the test plays the
supervisor once the disk is freed: the same server program started again on the same
files. The platform's own processes are not restarted: the same app, the same client.

Checked:
- while the disk is full, every answer that is not a ticket is a 503 problem (no 500);
- nothing half-written: each stored ticket has exactly one TicketIssued in the outbox;
- lost / duplicated / unexpected over the acknowledged tickets: zeros (a retry told its
  outcome was lost, 409 idempotency_outcome_lost, may leave one ticket no answer names);
- after the disk is freed, tickets are issued again by the same app, and the relay
  publishes every pending event."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pika
import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from motcua_common import topology
from motcua_common.events import parse_envelope
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import OUTBOX, pending_count
from motcua_common.relay import Relay
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare
from motcua_testing.chaos import DatabaseServer, drain, wait_until
from motcua_testing.disk import SmallDisk
from motcua_testing.kiosk import Kiosk

WARD = "dn-hai-chau"
SINK = "chaos.disk.ticket-events"
DISK_MB = 32  # the database's files take ~11 MB at start (10 MB of preallocated journal)

_TODAY = datetime.now(timezone.utc).date()
_MONDAY_9AM = datetime.combine(_TODAY + timedelta(days=7 - _TODAY.weekday()), datetime.min.time(),
                               timezone.utc).replace(hour=2)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path / "disk", DISK_MB)
    try:
        disk.mount()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield disk
    disk.unmount()


@pytest.fixture
def database(small_disk):
    """The database server on the small disk, stopped whatever the test's outcome."""
    server = DatabaseServer(small_disk.mountpoint / "db", sync_on_commit=True).start()
    yield server
    server.stop()


def use_up_the_database_reserve(url: str, timeout: float = 30) -> int:
    """Write 20 kB documents (incompressible) into a scratch database until the server
    refuses: the journal it had preallocated is used up and its next file cannot be made.
    How many were written."""
    import os

    client = MongoClient(url, serverSelectionTimeoutMS=3000, socketTimeoutMS=10000)
    written = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                client.scratch.blobs.insert_one({"blob": os.urandom(20_000)})
                written += 1
            except PyMongoError:
                return written
    finally:
        client.close()
    raise AssertionError(f"the database still accepted writes after {written} blobs on a full disk")


def test_database_disk_full_then_freed(broker_settings, verifier, token, small_disk, database, checker):
    check = checker("database disk full, then freed",
                    "a kiosk issuing tickets; the database's disk filled, its server failing, then freed")
    settings = replace(broker_settings, mongo_url=database.url)
    prepare(settings, demo=True)
    app = create_app(settings, verifier=verifier, clock=lambda: _MONDAY_9AM)
    client = connect(settings)
    queue_db = service_database(client, settings, "queue")
    kiosk = Kiosk(app, WARD, token("officer", WARD, subject="officer-lan")).start()
    try:
        assert wait_until(lambda: kiosk.count() >= 15 or kiosk.failure, timeout=30) and not kiosk.failure, \
            kiosk.failure

        scratch = MongoClient(database.url)
        scratch.scratch.blobs.insert_one({"blob": b""})  # its files made while there is room
        scratch.close()
        taken = small_disk.fill()
        blobs = use_up_the_database_reserve(database.url)
        assert wait_until(lambda: kiosk.refused() >= 5 or kiosk.failure, timeout=30), \
            f"the full disk refused tickets: {kiosk.count()} issued, {dict(kiosk.problems)}, {kiosk.failure}"
        during = dict(kiosk.problems)
        before_free = kiosk.count()

        small_disk.free()
        database.restart()  # the supervisor's part (see the docstring)
        assert wait_until(lambda: kiosk.count() >= before_free + 15 or kiosk.failure, timeout=60), \
            f"tickets issued again after the disk was freed: {kiosk.failure or dict(kiosk.problems)}"
    finally:
        kiosk.stop()
    print(f"\nfiller {taken >> 20} MiB, then {blobs} blobs of 20 kB; answers {dict(kiosk.statuses)}; "
          f"problems while full {during}")
    assert kiosk.failure is None, kiosk.failure
    assert set(during) <= {(503, "service_unavailable"), (409, "idempotency_in_progress")} and \
        (503, "service_unavailable") in during, f"a full disk answers the clear 503 only: {during}"
    assert not [k for k in kiosk.problems if k[0] >= 500 and k[0] != 503], dict(kiosk.problems)

    # Nothing half-written; every acknowledged ticket there once.
    for ticket_id in kiosk.tickets.values():
        check.ack(ticket_id)
    tickets = [doc["_id"] for doc in queue_db.tickets.find({"ward_id": WARD}, {"_id": 1})]
    for ticket_id in tickets:
        check.observe(ticket_id)
    issued = Counter(doc["envelope"]["payload"]["ticket_id"]
                     for doc in queue_db[OUTBOX].find({"envelope.type": "TicketIssued"}, {"envelope.payload.ticket_id": 1}))
    assert set(tickets) == set(issued) and all(n == 1 for n in issued.values()), "one TicketIssued per ticket"
    assert not check.lost, f"lost: {sorted(check.lost)[:5]}"
    assert not check.duplicated, f"duplicated: {sorted(check.duplicated)[:5]}"
    assert len(check.unexpected) <= len(kiosk.indeterminate), f"unexpected: {sorted(check.unexpected)[:5]}"

    # The outbox drains once the disk is back: every ticket's event reaches the broker once.
    delivered = checker("database disk full, then freed (delivered)", "the same tickets through the relay")
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    topology.declare(channel, settings)
    channel.queue_declare(SINK, durable=True)
    channel.queue_bind(SINK, "queue.events", routing_key="TicketIssued")
    connection.close()
    relay = Relay(queue_db, settings, "queue")
    try:
        assert wait_until(lambda: relay.publish_pending() == 0 and pending_count(queue_db) == 0, timeout=30)
    finally:
        relay.close()
        client.close()
        app.extensions["motcua"].mongo_client.close()
    for ticket_id in tickets:
        delivered.attempt(ticket_id)
    for ticket_id in kiosk.tickets.values():
        delivered.ack(ticket_id)
    for _headers, body in drain(settings.amqp_url, SINK):
        delivered.deliveries += 1
        delivered.observe(parse_envelope(json.loads(body))["ticket_id"])
    assert not delivered.lost and not delivered.duplicated and not delivered.unexpected, delivered.line()
