"""The queue on the real broker: TicketServed leaves the outbox through the relay for its
consumers, and the worker keeps the appointments projection from DossierSubmitted, once
per event however often it is delivered."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import pika
import pytest

from motcua_common import topology
from motcua_common.auth import Principal
from motcua_common.clock import FixedClock
from motcua_common.events import new_event, parse_envelope
from motcua_common.outbox import OUTBOX, commit, pending_count
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env, wait_for
from motcua_testing.rabbitcli import rabbitmqctl
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare
from motcua_queue import appointments, board, counters, hours, tickets, wards
from motcua_queue.deps import build_deps
from motcua_queue.store import APPOINTMENTS

WARD = "dn-lien-chieu"
BASE = "/queue/api/v1"


def take_all(settings, queue: str) -> list[dict]:
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    bodies = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        bodies.append(json.loads(body))
    connection.close()
    return bodies


def test_ticket_served_reaches_the_broker_through_the_relay(broker_settings, verifier, token, service_db):
    prepare(broker_settings, demo=True)
    app = create_app(broker_settings, verifier=verifier)
    try:
        client = app.test_client()
        officer = token("officer", WARD, subject="officer-hoa")
        issued = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "B"}, headers=officer).get_json()
        called = client.post(f"{BASE}/wards/{WARD}/counters/quay-2/call-next", headers=officer).get_json()
        assert called["ticket_id"] == issued["ticket_id"]
        assert client.post(f"{BASE}/tickets/{issued['ticket_id']}/actions", json={"action": "serve"},
                           headers=officer).status_code == 200
    finally:
        app.extensions["motcua"].db.client.close()

    db = service_db("queue")
    assert pending_count(db) == 3  # issued, called, served: stored, not yet published
    relay = Relay(db, broker_settings, "queue")
    try:
        assert relay.publish_pending() == 3  # declares the topology, then publishes with confirms
    finally:
        relay.close()
    assert pending_count(db) == 0
    assert db[OUTBOX].count_documents({"status": "sent"}) == 3

    # rating consumes TicketServed; its queue now holds exactly the served ticket.
    [body] = take_all(broker_settings, topology.subscription("rating", "TicketServed").queue)
    event = parse_envelope(body)
    assert (event.type, event.source, event.ward_id) == ("TicketServed", "queue", WARD)
    assert event.payload["ticket_id"] == issued["ticket_id"]
    assert event.payload["officer_id"] == "officer-hoa"
    assert event.payload["counter_id"] == "quay-2"
    assert set(event.payload) == {"ticket_id", "ward_id", "counter_id", "officer_id", "wait_seconds",
                                  "service_seconds", "service_code", "number"}


# ---------------------------------------------------------------- the worker
def submitted(dossier_id: str, receipt_code: str) -> dict:
    return new_event("DossierSubmitted", WARD, {
        "dossier_id": dossier_id, "receipt_code": receipt_code, "procedure_code": "HT-KS-01",
        "ward_id": WARD, "channel": "counter", "due_date": "2026-03-05",
    })


def messages_in(settings, queue: str) -> int:
    """Ready plus unacknowledged messages of a queue (what basic_get cannot see)."""
    vhost = settings.amqp_url.rsplit("/", 1)[1]
    out = rabbitmqctl("-q", "list_queues", "-p", vhost, "name", "messages")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return int(parts[1])
    return 0


@pytest.fixture
def worker(broker_settings):
    prepare(broker_settings)
    proc = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "queue"],
                            env=settings_env(broker_settings))
    yield proc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_worker_projects_appointments_once_per_event(broker_settings, service_db, worker):
    dossier_db, queue_db = service_db("dossier"), service_db("queue")
    dossier_id = str(uuid.uuid4())
    event = submitted(dossier_id, "HC-2603-0001")
    commit(dossier_db, lambda session: None, [event])
    relay = Relay(dossier_db, broker_settings, "dossier")
    try:
        relay.publish_pending()
        wait_for(lambda: queue_db[APPOINTMENTS].find_one({"_id": dossier_id}), message="the appointment")
        first = queue_db[APPOINTMENTS].find_one({"_id": dossier_id})
        # The same event again, as after a relay crash between the confirm and the mark.
        dossier_db[OUTBOX].update_one({"_id": event["event_id"]}, {"$set": {"status": "pending"}})
        assert relay.publish_pending() == 1
    finally:
        relay.close()
    queue = topology.subscription("queue", "DossierSubmitted").queue
    wait_for(lambda: messages_in(broker_settings, queue) == 0, message="the redelivery to be consumed")
    assert queue_db[APPOINTMENTS].count_documents({}) == 1
    assert queue_db[APPOINTMENTS].find_one({"_id": dossier_id}) == first
    assert first["receipt_code"] == "HC-2603-0001" and first["due_date"] == "2026-03-05"
    assert queue_db.processed_events.count_documents({}) == 1
    assert take_all(broker_settings, f"{queue}.dead") == []
    assert worker.poll() is None


def test_record_appointment_is_idempotent_in_process(service_db, settings):
    """The same projection without a broker: the worker's use case twice with one event."""
    db = service_db("queue")
    deps = build_deps(settings, db=db, verifier=None, devices=None)
    event = parse_envelope(submitted("d-1", "HC-2603-0002"))
    outcomes = [appointments.record_submitted(deps, None, event) for _ in range(2)]
    assert outcomes == ["processed", "duplicate"]
    doc = db[APPOINTMENTS].find_one({"_id": "d-1"})
    assert {k: doc[k] for k in ("receipt_code", "ward_id", "procedure_code", "due_date")} == {
        "receipt_code": "HC-2603-0002", "ward_id": WARD, "procedure_code": "HT-KS-01", "due_date": "2026-03-05"}
    assert doc["recorded_at"] <= datetime.now(timezone.utc)


def test_a_counter_s_day_walks_indexes_and_never_reads_every_ticket_ever_issued(service_db, settings):
    """Issue, call, serve, the board: no collection scan, and no findAndModify on tickets,
    which the embedded database answers by reading every ticket kept (a year's, in an office
    on one machine)."""
    from motcua_testing.fixtures import collection_scans, recording_client
    from motcua_queue.store import ensure_indexes

    db = service_db("queue")
    ensure_indexes(db)
    clock = FixedClock(datetime.now(timezone.utc))
    deps = build_deps(settings, db=db, verifier=None, devices=None, clock=clock)
    admin = Principal(subject="admin", role="admin", ward_id=None)
    wards.record_ward_opened(deps, None, {"ward_id": WARD, "name": "Phường Liên Chiểu"},
                             opening_hours=hours.always_open_hours())
    counters.put_service(deps, admin, WARD, "A", {"name": "Chứng thực", "prefix": "A"})
    counters.put_counter(deps, admin, WARD, "quay-1", {"name": "Quầy 1", "service_codes": ["A"]})
    service = {"code": "A", "prefix": "A", "name": "Chứng thực"}
    for _ in range(5):
        tickets.issue(deps, None, tickets.TicketOrder(WARD, service, "normal"))
    officer = Principal(subject="officer-hoa", role="officer", ward_id=WARD)

    def day(twin) -> None:
        at_counter = build_deps(settings, db=twin, verifier=None, devices=None, clock=clock)
        tickets.issue(at_counter, None, tickets.TicketOrder(WARD, service, "priority"))
        called = tickets.call_next(at_counter, officer, WARD, "quay-1")
        called = at_counter.store.ticket(called["ticket_id"])
        assert called["priority"] == "priority" and called["status"] == "called"
        served = tickets.apply_action(at_counter, called, "serve", "officer-hoa")
        assert served["status"] == "served" and served["served_at"] is not None
        board.snapshot(at_counter, None, WARD)
        assert tickets.current_at_counter(at_counter, officer, WARD, "quay-1") is None

    assert collection_scans(db, day) == []
    with recording_client(db) as (twin, commands):
        day(twin)
    assert [c for c in commands if c.get("findAndModify") == "tickets"] == []


# ---------------------------------------------------------------- identity's events
def test_the_worker_learns_of_a_ward_once_and_of_revoked_sessions(broker_settings, service_db, worker, verifier, token):
    """WardOpened (delivered twice) makes one ward with the default hours, which the API then
    serves; SessionsRevoked is kept for the API's token check."""
    identity_db, queue_db = service_db("identity"), service_db("queue")
    opened = new_event("WardOpened", "tn-phu-binh", {
        "ward_id": "tn-phu-binh", "official_code": "05473", "name": "Phường Phú Bình", "province": "Tỉnh Thái Nguyên",
        "province_code": "019", "kind": "phường", "target_population": 7000})
    revoked = new_event("SessionsRevoked", WARD, {
        "account_id": "officer-gone", "ward_id": WARD, "revoked_before": "2026-12-07T01:00:00Z", "reason": "deactivated"})
    commit(identity_db, lambda session: None, [opened, revoked])
    relay = Relay(identity_db, broker_settings, "identity")
    try:
        assert relay.publish_pending() == 2
        wait_for(lambda: queue_db.wards.find_one({"_id": "tn-phu-binh"}), message="the ward")
        wait_for(lambda: queue_db.revoked_sessions.find_one({"_id": "officer-gone"}), message="the revocation")
        first = queue_db.wards.find_one({"_id": "tn-phu-binh"})
        identity_db[OUTBOX].update_one({"_id": opened["event_id"]}, {"$set": {"status": "pending"}})
        assert relay.publish_pending() == 1
    finally:
        relay.close()
    queue = topology.subscription("queue", "WardOpened").queue
    wait_for(lambda: messages_in(broker_settings, queue) == 0, message="the redelivery to be consumed")
    assert queue_db.wards.count_documents({}) == 1 and queue_db.wards.find_one({"_id": "tn-phu-binh"}) == first
    assert first["official_code"] == "05473" and first["opening_hours"]["weekly"]["sun"] == []
    assert take_all(broker_settings, f"{queue}.dead") == []

    app = create_app(broker_settings, verifier=verifier)
    try:
        client = app.test_client()
        assert client.get(f"{BASE}/wards/tn-phu-binh/services").get_json() == []
        answer = client.put(f"{BASE}/wards/tn-phu-binh/services/HT", json={"name": "Hộ tịch", "prefix": "A"},
                            headers=token("ward_admin", "tn-phu-binh"))
        assert answer.status_code == 200
    finally:
        app.extensions["motcua"].db.client.close()
    assert worker.poll() is None
