"""The real rating worker (a subprocess) on the real RabbitMQ: events published by queue's and
dossier's outboxes through the relay open rating opportunities once, and the API then
takes the rating."""
from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest

from motcua_common.events import new_event
from motcua_common.outbox import OUTBOX, commit
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env, wait_for
from motcua_testing.rabbitcli import rabbitmqctl
from motcua_rating import domain
from motcua_rating.api import create_app
from motcua_rating.bootstrap import prepare
from motcua_rating.store import OPPORTUNITIES, find_opportunity

WARD = "dn-hai-chau"


@pytest.fixture
def rating_db(broker_settings, service_db):
    prepare(broker_settings, demo=False)
    return service_db("rating")


@pytest.fixture
def rating_worker(broker_settings, rating_db):
    proc = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "rating"],
                            env=settings_env(broker_settings))
    yield proc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def client(broker_settings, verifier, rating_db):
    app = create_app(broker_settings, verifier=verifier)
    yield app.test_client()
    app.extensions["motcua"].db.client.close()


def publish(settings, db, source: str, *events: dict) -> None:
    """Through the source service's outbox and relay, as in production."""
    commit(db, lambda session: None, list(events))
    relay = Relay(db, settings, source)
    try:
        assert relay.publish_pending() == len(events)
    finally:
        relay.close()


def republish(settings, db, source: str, event: dict) -> None:
    """The relay crashed after the broker's confirm: the same event goes out again."""
    db[OUTBOX].update_one({"_id": event["event_id"]}, {"$set": {"status": "pending"}})
    relay = Relay(db, settings, source)
    try:
        assert relay.publish_pending() == 1
    finally:
        relay.close()


def queue_drained(settings, queue: str) -> bool:
    """Nothing ready and nothing unacknowledged: every delivery was handled and acked."""
    vhost = settings.amqp_url.rsplit("/", 1)[1]
    out = rabbitmqctl("-q", "list_queues", "-p", vhost, "name", "messages", "messages_unacknowledged")
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == queue:
            return parts[1:] == ["0", "0"]
    return False


def test_a_served_ticket_becomes_ratable_once(broker_settings, service_db, rating_db, rating_worker, client):
    queue_db = service_db("queue")
    ticket_id = str(uuid.uuid4())
    served = new_event("TicketServed", WARD, {
        "ticket_id": ticket_id, "ward_id": WARD, "counter_id": "c1", "officer_id": "officer-1",
        "wait_seconds": 120, "service_seconds": 240, "service_code": "A", "number": "A012"})
    publish(broker_settings, queue_db, "queue", served)

    opportunity = wait_for(lambda: find_opportunity(rating_db, "ticket", ticket_id), message="the ticket's opportunity")
    served_at = domain.parse_instant(served["occurred_at"])
    assert opportunity["ratable_until"] == served_at + timedelta(hours=24)
    assert (opportunity["officer_id"], opportunity["counter_id"], opportunity["number"]) == ("officer-1", "c1", "A012")

    republish(broker_settings, queue_db, "queue", served)
    wait_for(lambda: queue_drained(broker_settings, "rating.queue.TicketServed"), message="the redelivery to be handled")
    assert rating_db[OPPORTUNITIES].count_documents({}) == 1
    assert rating_db.processed_events.count_documents({}) == 1
    assert find_opportunity(rating_db, "ticket", ticket_id) == opportunity

    response = client.post("/rating/api/v1/ratings", json={"ticket_id": ticket_id, "score": "very_satisfied"})
    assert response.status_code == 201, response.json
    assert rating_worker.poll() is None


def test_a_dossier_becomes_ratable_when_returned(broker_settings, service_db, rating_db, rating_worker, client):
    dossier_db = service_db("dossier")
    dossier_id, receipt_code = str(uuid.uuid4()), f"HC-{uuid.uuid4().hex[:6]}"
    common = {"dossier_id": dossier_id, "receipt_code": receipt_code, "ward_id": WARD}
    publish(broker_settings, dossier_db, "dossier", new_event("DossierResultReady", WARD, common))

    wait_for(lambda: find_opportunity(rating_db, "dossier", receipt_code), message="the dossier's opportunity")
    assert find_opportunity(rating_db, "dossier", receipt_code)["state"] == "pending_return"
    too_early = client.post("/rating/api/v1/ratings", json={"receipt_code": receipt_code, "score": "satisfied"})
    assert too_early.status_code == 404 and too_early.json["code"] == "not_ratable"

    returned = new_event("DossierStatusChanged", WARD, {
        **common, "from_status": "result_ready", "to_status": "returned", "actor_id": "officer-7"})
    publish(broker_settings, dossier_db, "dossier",
            new_event("DossierStatusChanged", WARD, {**common, "from_status": "processing", "to_status": "result_ready",
                                                     "actor_id": "officer-3"}),
            returned)
    opportunity = wait_for(lambda: rating_db[OPPORTUNITIES].find_one({"subject_id": receipt_code, "state": "ratable"}),
                           message="the dossier to become ratable")
    assert opportunity["officer_id"] == "officer-7"
    assert opportunity["ratable_until"] == domain.parse_instant(returned["occurred_at"]) + timedelta(days=7)

    response = client.post("/rating/api/v1/ratings", json={"receipt_code": receipt_code, "score": "satisfied"})
    assert response.status_code == 201, response.json
    [given] = [d["envelope"]["payload"] for d in rating_db[OUTBOX].find({"routing_key": "RatingGiven"})]
    assert (given["subject_type"], given["subject_id"], given["officer_id"]) == ("dossier", dossier_id, "officer-7")
    assert rating_worker.poll() is None


def test_wards_opened_are_named_once_and_sessions_revoked_are_kept(broker_settings, rating_db, rating_worker,
                                                                  service_db):
    identity_db = service_db("identity")
    opened = new_event("WardOpened", "tn-phu-binh", {
        "ward_id": "tn-phu-binh", "official_code": "05473", "name": "Phường Phú Bình", "province": "Tỉnh Thái Nguyên",
        "province_code": "019", "kind": "phường", "target_population": 7000})
    revoked = new_event("SessionsRevoked", WARD, {
        "account_id": "officer-gone", "ward_id": WARD, "revoked_before": "2026-12-07T01:00:00Z", "reason": "deactivated"})
    publish(broker_settings, identity_db, "identity", opened, revoked)
    wait_for(lambda: rating_db.wards.find_one({"_id": "tn-phu-binh"}), message="the ward")
    wait_for(lambda: rating_db.revoked_sessions.find_one({"_id": "officer-gone"}), message="the revocation")
    first = rating_db.wards.find_one({"_id": "tn-phu-binh"})
    # The same event again (a relay crash between the confirm and the mark): nothing changes.
    republish(broker_settings, identity_db, "identity", opened)
    wait_for(lambda: queue_drained(broker_settings, "rating.identity.WardOpened"), message="the redelivery to be handled")
    assert rating_db.processed_events.count_documents({}) == 2
    assert rating_db.wards.count_documents({}) == 1 and rating_db.wards.find_one({"_id": "tn-phu-binh"}) == first
    assert (first["name"], first["province"], first["official_code"]) == ("Phường Phú Bình", "Tỉnh Thái Nguyên", "05473")
    assert rating_worker.poll() is None
