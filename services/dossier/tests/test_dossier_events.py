"""Events over the real broker: a submitted dossier's DossierSubmitted leaves the outbox
through the relay and reaches its consumers' queues; the dossier worker keeps the citizens
projection from CitizenRegistered, once per event however often it is delivered."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pika
import pytest

from motcua_common import topology
from motcua_common.events import new_event
from motcua_common.outbox import OUTBOX, commit, pending_count
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env, wait_for


def take(settings, queue):
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        messages = []
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append(json.loads(body))
    finally:
        connection.close()


def test_submitted_and_status_events_reach_the_broker_through_the_relay(broker_settings, client, submit, officer, dossier_db):
    topology.declare_with_url(broker_settings)  # the consumers' queues exist before anything is published
    submission = submit().json
    client.post(f"/dossier/api/v1/dossiers/{submission['dossier_id']}/actions", json={"action": "receive"},
                headers=officer)
    relay = Relay(dossier_db, broker_settings, "dossier")
    try:
        assert relay.publish_pending() == 2
    finally:
        relay.close()
    assert pending_count(dossier_db) == 0
    assert dossier_db[OUTBOX].count_documents({"status": "sent"}) == 2

    [to_queue] = take(broker_settings, "queue.dossier.DossierSubmitted")
    assert to_queue["type"] == "DossierSubmitted" and to_queue["source"] == "dossier"
    assert to_queue["ward_id"] == "dn-hai-chau"
    assert to_queue["payload"]["receipt_code"] == submission["receipt_code"]
    assert to_queue["payload"]["due_date"] == submission["due_date"]
    [to_notify] = take(broker_settings, "notify.dossier.DossierStatusChanged")
    assert to_notify["payload"]["to_status"] == "received"


@pytest.fixture
def worker(broker_settings, dossier_db):
    process = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "dossier"],
                               env=settings_env(broker_settings))
    yield process
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def publish_from_identity(identity_db, settings, *events):
    commit(identity_db, lambda session: None, list(events))
    relay = Relay(identity_db, settings, "identity")
    try:
        relay.publish_pending()
    finally:
        relay.close()


def registered(citizen_id, channel="web"):
    return new_event("CitizenRegistered", "dn-hai-chau",
                     {"citizen_id": citizen_id, "ward_id": "dn-hai-chau", "channel": channel, "age_band": "18-60"})


def test_the_worker_projects_citizens_once_per_event(broker_settings, service_db, worker, dossier_db):
    identity_db = service_db("identity")
    first = registered("cit-100")
    publish_from_identity(identity_db, broker_settings, first)
    citizen = wait_for(lambda: dossier_db.citizens.find_one({"_id": "cit-100"}), timeout=30,
                       message="the citizens projection")
    assert citizen["ward_id"] == "dn-hai-chau" and citizen["channel"] == "web" and citizen["age_band"] == "18-60"
    assert citizen["registered_at"].isoformat().startswith(first["occurred_at"][:19])
    assert set(citizen) == {"_id", "citizen_id", "ward_id", "channel", "age_band", "registered_at"}

    # Mark the projection so that handling the event again would show, then redeliver it
    # (a relay that crashed after the broker's confirm publishes it again).
    dossier_db.citizens.update_one({"_id": "cit-100"}, {"$set": {"channel": "untouched"}})
    identity_db[OUTBOX].update_one({"_id": first["event_id"]}, {"$set": {"status": "pending"}})
    publish_from_identity(identity_db, broker_settings, registered("cit-101", channel="sms"))
    wait_for(lambda: dossier_db.citizens.find_one({"_id": "cit-101"}), timeout=30, message="the later event")
    wait_for(lambda: dossier_db.processed_events.count_documents({}) == 2, message="two processed marks")
    time.sleep(0.5)
    assert dossier_db.citizens.find_one({"_id": "cit-100"})["channel"] == "untouched"
    assert dossier_db.citizens.count_documents({}) == 2
    assert take(broker_settings, "dossier.identity.CitizenRegistered.dead") == []
    assert worker.poll() is None
