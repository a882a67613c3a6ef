"""Outbox -> relay -> broker -> idempotent nameko consumer, against the real RabbitMQ and
the SecantusDB server: atomicity, confirms, redelivery, retries and dead-lettering."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest

from motcua_common import topology
from motcua_common.events import new_event
from motcua_common.outbox import OUTBOX, commit, pending_count
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env, wait_for

SUPPORT = Path(__file__).resolve().parents[3] / "tests" / "support"


def submitted(code: str) -> dict:
    return new_event("DossierSubmitted", "w1", {
        "dossier_id": str(uuid.uuid4()), "receipt_code": code, "procedure_code": "KS01",
        "ward_id": "w1", "channel": "online", "due_date": "2026-12-01",
    })


@pytest.fixture
def worker(broker_settings):
    env = settings_env(broker_settings)
    env["MOTCUA_WORKER_MODULE"] = "probe_worker"
    env["PYTHONPATH"] = str(SUPPORT)
    proc = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "notify"], env=env)
    yield proc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def publish_raw(settings, body: bytes, content_type="application/json"):
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    ch = conn.channel()
    topology.declare(ch, settings)
    ch.confirm_delivery()
    ch.basic_publish("dossier.events", "DossierSubmitted", body,
                     pika.BasicProperties(content_type=content_type, delivery_mode=2))
    conn.close()


def dead_letters(settings, queue="notify.dossier.DossierSubmitted.dead"):
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    ch = conn.channel()
    out = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        out.append((props.headers or {}, body))
    conn.close()
    return out


def test_outbox_write_is_atomic_with_the_state_change(service_db):
    db = service_db("dossier")
    event = submitted("A1")

    def change(session):
        db.dossiers.insert_one({"_id": "d1"}, session=session)
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        commit(db, change, [event])
    assert db.dossiers.count_documents({}) == 0
    assert db[OUTBOX].count_documents({}) == 0

    commit(db, lambda s: db.dossiers.insert_one({"_id": "d1"}, session=s), [event])
    assert db.dossiers.count_documents({}) == 1
    assert pending_count(db) == 1


def test_relay_publishes_in_order_and_marks_sent_after_confirm(broker_settings, service_db):
    db = service_db("dossier")
    events = [submitted(f"R{i}") for i in range(5)]
    commit(db, lambda s: None, events)
    relay = Relay(db, broker_settings, "dossier")
    conn = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    topology.declare(conn.channel(), broker_settings)
    assert relay.publish_pending() == 5
    relay.close()
    assert pending_count(db) == 0
    ch = conn.channel()
    received = []
    for _ in range(5):
        method, props, body = ch.basic_get("notify.dossier.DossierSubmitted", auto_ack=True)
        assert props.content_type == "application/json" and props.delivery_mode == 2
        received.append(json.loads(body)["payload"]["receipt_code"])
    conn.close()
    assert received == [f"R{i}" for i in range(5)]


def test_relay_leaves_events_pending_while_the_broker_is_unreachable(broker_settings, service_db):
    from dataclasses import replace

    db = service_db("dossier")
    commit(db, lambda s: None, [submitted("X1")])
    dead = Relay(db, replace(broker_settings, amqp_url="amqp://guest:guest@127.0.0.1:1/%2F"), "dossier")
    with pytest.raises(Exception):
        dead.publish_pending()
    assert pending_count(db) == 1
    alive = Relay(db, broker_settings, "dossier")
    assert alive.publish_pending() == 1
    alive.close()
    assert pending_count(db) == 0


def test_consumer_is_idempotent_and_dead_letters_failures(broker_settings, service_db, worker):
    notify = service_db("notify")
    dossier = service_db("dossier")
    ok, failing = submitted("OK1"), submitted("FAIL1")
    commit(dossier, lambda s: None, [ok, failing])
    relay = Relay(dossier, broker_settings, "dossier")
    relay.publish_pending()
    # The same event published again (a relay crash after confirm) changes nothing.
    dossier[OUTBOX].update_one({"_id": ok["event_id"]}, {"$set": {"status": "pending"}})
    relay.publish_pending()
    relay.close()

    wait_for(lambda: notify.seen.count_documents({}) >= 1, message="the event to be consumed")
    wait_for(lambda: notify.processed_events.count_documents({}) == 1, message="the processed mark")
    dead = wait_for(lambda: dead_letters(broker_settings), timeout=30, message="the failing event to be dead-lettered")
    headers, body = dead[0]
    assert json.loads(body)["payload"]["receipt_code"] == "FAIL1"
    assert "cannot handle FAIL1" in headers["x-motcua-error"]
    assert headers["x-motcua-attempts"] == broker_settings.consumer_max_attempts
    assert notify.failures.count_documents({}) == broker_settings.consumer_max_attempts
    assert notify.seen.count_documents({}) == 1


@pytest.mark.parametrize("body,content_type", [
    (b"{not json", "application/json"),
    (json.dumps({"event_id": "x", "type": "DossierSubmitted", "payload": {}}).encode(), "application/json"),
    (b"hello", "text/plain"),
])
def test_malformed_messages_are_dead_lettered_and_the_consumer_lives_on(broker_settings, service_db, worker, body, content_type):
    publish_raw(broker_settings, body, content_type)
    dead = wait_for(lambda: dead_letters(broker_settings), timeout=30, message="the malformed message in the DLQ")
    assert dead[0][1] == body
    assert dead[0][0]["x-motcua-error"]
    # and good traffic still flows
    publish_raw(broker_settings, json.dumps(submitted("AFTER")).encode())
    wait_for(lambda: service_db("notify").seen.find_one({"receipt_code": "AFTER"}), timeout=30, message="later traffic")
    assert worker.poll() is None


def test_relay_keeps_an_event_pending_when_the_broker_nacks_it(broker_settings, service_db):
    """A queue that refuses more messages (x-overflow reject-publish) makes the broker nack:
    the event stays pending, in order, and goes out once there is room again."""
    db = service_db("dossier")
    conn = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    ch = conn.channel()
    topology.declare(ch, broker_settings)
    ch.queue_declare("full-audit", durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.queue_bind("full-audit", "dossier.events", routing_key="DossierSubmitted")
    first, second, third = submitted("N1"), submitted("N2"), submitted("N3")
    commit(db, lambda s: None, [first, second, third])
    relay = Relay(db, broker_settings, "dossier")
    assert relay.publish_pending() == 1
    assert [d["envelope"]["payload"]["receipt_code"] for d in db[OUTBOX].find({"status": "pending"}).sort("n", 1)] == ["N2", "N3"]
    ch.queue_purge("full-audit")
    assert relay.publish_pending() == 1
    ch.queue_purge("full-audit")
    assert relay.publish_pending() == 1
    relay.close()
    assert pending_count(db) == 0
    conn.close()


def test_an_event_that_kills_its_worker_is_dead_lettered_after_the_delivery_limit(broker_settings, service_db):
    """Poison that kills: the handler takes the worker process down, so the consumer's own
    bounded retry never runs and the message is redelivered to every restarted worker. The
    queue's delivery limit moves it to the dead-letter queue; the events behind it go through."""
    from dataclasses import replace

    settings = replace(broker_settings, consumer_delivery_limit=3)
    notify, dossier = service_db("notify"), service_db("dossier")
    # One message in hand at a time: the poison alone is unacknowledged when the worker dies.
    # (With more in hand, the others are returned with it and count a delivery too: a
    # healthy event can reach the limit beside a poison one and is then dead-lettered as
    # well, to be replayed with `motcua dead-letters replay` — never lost.)
    env = {**settings_env(settings), "MOTCUA_WORKER_MODULE": "probe_worker", "PYTHONPATH": str(SUPPORT),
           "MOTCUA_CONSUMER_DELIVERY_LIMIT": "3", "MOTCUA_WORKER_MAX_WORKERS": "1"}
    topology.declare_with_url(settings)
    commit(dossier, lambda s: None, [submitted("KILL1")] + [submitted(f"OK{i}") for i in range(5)])
    relay = Relay(dossier, settings, "dossier")
    relay.publish_pending()
    relay.close()
    restarts = 0
    worker = None
    try:
        # What `motcua up` (or Kubernetes) does: start the worker again whenever it dies.
        def settled() -> bool:
            nonlocal worker, restarts
            if worker is None or worker.poll() is not None:
                restarts += worker is not None
                worker = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service",
                                           "notify"], env=env)
            return notify.seen.count_documents({}) == 5 and bool(dead_letters_peek(settings))
        wait_for(settled, timeout=120, interval=0.5, message="the good events consumed, the poison dead-lettered")
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(20)
    from motcua_platform import dead_letters as operators

    listed = operators.list_dead(settings)
    [letter] = listed["notify.dossier.DossierSubmitted.dead"]
    assert "delivery_limit" in letter.reason, "the operator is told why"
    assert dead_letters_peek(settings) == 1, "listing leaves them where they are"
    # Once the cause is fixed the operator sends it back (no worker runs now: it waits there).
    assert operators.replay(settings, "notify.dossier.DossierSubmitted.dead") == 1
    assert dead_letters_peek(settings) == 0
    headers, body = basic_get_one(settings, "notify.dossier.DossierSubmitted")
    assert json.loads(body)["payload"]["receipt_code"] == "KILL1" and headers["x-motcua-replayed"] is True
    # The first delivery and `limit` returns (RabbitMQ counts returns), then set aside.
    assert notify.kills.count_documents({}) == 3 + 1 == restarts
    assert notify.seen.count_documents({}) == 5


def basic_get_one(settings, queue):
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        method, properties, body = conn.channel().basic_get(queue, auto_ack=True)
        assert method is not None, f"nothing in {queue}"
        return properties.headers or {}, body
    finally:
        conn.close()


def dead_letters_peek(settings, queue="notify.dossier.DossierSubmitted.dead") -> int:
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def test_a_queue_from_before_the_delivery_limit_keeps_working(broker_settings, caplog):
    """An upgrade: the broker refuses to change an existing queue's arguments. The topology
    goes on (the queue as it is) and says how to add the limit, instead of failing every
    process at start."""
    sub = topology.subscription("notify", "DossierSubmitted")
    conn = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    try:
        conn.channel().queue_declare(sub.queue, durable=True, arguments={"x-queue-type": "quorum"})
        with caplog.at_level("WARNING"):
            topology.declare(conn.channel(), broker_settings)
        assert "set_policy motcua-poison" in caplog.text and sub.queue in caplog.text
        assert conn.channel().queue_declare(sub.queue, passive=True).method.queue == sub.queue
    finally:
        conn.close()
