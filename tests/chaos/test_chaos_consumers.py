"""Faults 1, 3 and 6, against the real rating worker (a subprocess) consuming TicketServed
on the real broker, with its effects in the real database: each served ticket must open
exactly one rating opportunity, whatever happens to the worker, the relay or the input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

from dataclasses import replace

import pika
import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from motcua_common import topology
from motcua_testing.chaos import DatabaseServer, drain, wait_until
from motcua_common.mongo import connect, service_database
from motcua_common.events import new_event
from motcua_common.outbox import OUTBOX, commit, pending_count
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env
from motcua_testing.rabbitcli import RabbitCliError, run_cli

WARD = "dn-hai-chau"
QUEUE = "rating.queue.TicketServed"
AUDIT = "chaos.audit.TicketServed"


def served(n: int) -> dict:
    return new_event("TicketServed", WARD, {
        "ticket_id": f"t-{uuid.uuid4().hex[:12]}", "ward_id": WARD, "counter_id": "Q1",
        "officer_id": "officer-lan", "wait_seconds": 60 + n % 300, "service_seconds": 120,
        "service_code": "A", "number": f"A{n % 1000:03d}",
    })


class Worker:
    def __init__(self, settings):
        self.env = settings_env(settings)
        self.env["MOTCUA_LOG_LEVEL"] = "WARNING"
        self.process = None
        self.kills = 0

    def start(self) -> "Worker":
        self.process = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "rating"],
                                        env=self.env, start_new_session=True)
        return self

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def broker(broker_settings):
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    channel = connection.channel()
    topology.declare(channel, broker_settings)
    # Every delivery the broker makes of TicketServed, duplicates included: the raw truth
    # the idempotent consumer has to absorb.
    channel.queue_declare(AUDIT, durable=True)
    channel.queue_bind(AUDIT, "queue.events", routing_key="TicketServed")
    channel.confirm_delivery()
    yield channel
    connection.close()


def publish(channel, body: bytes) -> None:
    channel.basic_publish("queue.events", "TicketServed", body,
                          pika.BasicProperties(content_type="application/json", delivery_mode=2))


def queue_depth(channel, name: str) -> int:
    return channel.queue_declare(name, passive=True).method.message_count


def effects_of(rating_db, check) -> None:
    for doc in rating_db.opportunities.find({"subject_type": "ticket"}, {"subject_id": 1}):
        check.observe(doc["subject_id"])


def assert_clean(check) -> None:
    assert not check.lost, f"lost: {sorted(check.lost)[:5]}"
    assert not check.duplicated, f"duplicated effects: {sorted(check.duplicated)[:5]}"
    assert not check.unexpected, f"unexpected: {sorted(check.unexpected)[:5]}"


# Why the worker once stalled here: a worker killed inside handle_once leaves its transaction
# open on the server, holding its writes (the event's processed mark). The restarted worker
# gets the same events again first; their transactions meet a WriteConflict, which pymongo's
# with_transaction retries — filling all 10 handler slots — until the server aborts the dead
# transaction. Real MongoDB does exactly the same after transactionLifetimeLimitSeconds (60 s by
# default), and so does SecantusDB (test_a_dead_clients_transaction_... below pins it):
# nothing is lost or doubled, the worker only waits. To keep this test under a minute, its
# database aborts abandoned transactions after 3 s — the test's setting only; production
# code is unchanged (the README's fault table says so).
ABANDONED_TRANSACTION_LIFETIME = 3.0


@pytest.fixture
def short_lived_transactions(tmp_path):
    server = DatabaseServer(tmp_path / "db", transaction_lifetime=ABANDONED_TRANSACTION_LIFETIME).start()
    yield server
    server.stop()


def test_a_dead_clients_transaction_holds_its_writes_until_the_server_aborts_it(short_lived_transactions):
    """The database's side of fault 1, with pymongo alone: a process dies inside a
    transaction after a write; another client's transaction on the same document conflicts
    until the lifetime has passed, then succeeds, and the dead transaction left nothing."""
    url = short_lived_transactions.url
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from pymongo import MongoClient\n"
        "db = MongoClient(sys.argv[1]).chaos\n"
        "s = db.client.start_session(); s.start_transaction()\n"
        "db.marks.insert_one({'_id': 'k', 'by': 'dead'}, session=s)\n"
        "print('inside', flush=True); time.sleep(600)\n"), url], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "inside"
    finally:
        child.kill()
        child.wait()
    died = time.monotonic()
    client = MongoClient(url)
    try:
        def write_once():
            with client.start_session() as session:
                session.start_transaction()
                client.chaos.marks.insert_one({"_id": "k", "by": "alive"}, session=session)
                session.commit_transaction()

        with pytest.raises(OperationFailure) as conflict:
            write_once()
        assert conflict.value.code == 112 and conflict.value.has_error_label("TransientTransactionError")
        time.sleep(max(0.0, died + ABANDONED_TRANSACTION_LIFETIME + 0.5 - time.monotonic()))
        write_once()
        assert list(client.chaos.marks.find()) == [{"_id": "k", "by": "alive"}]
    finally:
        client.close()


def test_worker_killed_mid_handler_again_and_again(broker_settings, broker, short_lived_transactions, checker):
    check = checker("1. worker killed with SIGKILL mid-handler", "400 TicketServed, 5 kills 1 s apart")
    broker_settings = replace(broker_settings, mongo_url=short_lived_transactions.url)
    client = connect(broker_settings)
    rating = service_database(client, broker_settings, "rating")
    worker = Worker(broker_settings).start()
    try:
        events = [served(n) for n in range(400)]
        for event in events:
            publish(broker, json.dumps(event).encode())  # confirmed: the broker has it
            check.ack(event["payload"]["ticket_id"])
        for _ in range(5):
            wait_until(lambda: rating.processed_events.count_documents({}) > 0, timeout=20)
            time.sleep(1.0)
            worker.kill9()
            worker.start()
        done = wait_until(lambda: rating.opportunities.count_documents({}) >= len(events), timeout=30, interval=0.5)
        effects_of(rating, check)  # reported even when the wait ran out
        if not done:
            vhost = broker_settings.amqp_url.rsplit("/", 1)[1]
            try:
                print(run_cli("rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages_ready",
                              "messages_unacknowledged", "consumers", check=False).stdout)
            except RabbitCliError as exc:  # only a report: the assertion below says what went wrong
                print(exc)
        assert done, (f"only {rating.opportunities.count_documents({})} of {len(events)} processed; queue "
                      f"{queue_depth(broker, QUEUE)}, retry {queue_depth(broker, QUEUE + '.retry')}, "
                      f"dead {queue_depth(broker, QUEUE + '.dead')}, marks {rating.processed_events.count_documents({})}")
        wait_until(lambda: queue_depth(broker, QUEUE) == 0, timeout=10)
        assert rating.processed_events.count_documents({}) == len(events)
        assert queue_depth(broker, QUEUE) == 0 and queue_depth(broker, QUEUE + ".dead") == 0
        assert worker.kills == 5
    finally:
        worker.stop()
        client.close()
    assert_clean(check)


class RelayCrash(Exception):
    """Stands for the relay process dying between the broker's confirm and the mark."""


def test_relay_crashing_after_the_confirm_before_the_mark(broker_settings, broker, service_db, checker, monkeypatch):
    check = checker("3. relay crash after confirm, before marking sent", "200 TicketServed in the outbox, batches of 10, every 3rd mark lost")
    queue_db, rating = service_db("queue"), service_db("rating")
    events = [served(n) for n in range(200)]
    commit(queue_db, lambda s: None, events)
    for event in events:
        check.ack(event["payload"]["ticket_id"])

    marks = {"n": 0}
    resent = []  # events confirmed by the broker whose mark was lost in a crash
    real = {name: getattr(Collection, name) for name in ("update_one", "update_many", "bulk_write")}

    def crash_before_marking(ids: list) -> None:
        marks["n"] += 1
        if marks["n"] % 3 == 0:
            resent.extend(ids)
            raise RelayCrash()

    def crashing(name):
        def update(self, filter, update, *args, **kwargs):
            # The mark of published events: the relay sets status "sent" after the confirm.
            if self.name == OUTBOX and update.get("$set", {}).get("status") == "sent":
                crash_before_marking(filter["_id"]["$in"] if isinstance(filter["_id"], dict) else [filter["_id"]])
            return real[name](self, filter, update, *args, **kwargs)
        return update

    def crashing_bulk(self, requests, *args, **kwargs):
        # The same mark, as one write of an update per event (what the relay does).
        marked = [r._filter["_id"] for r in requests if getattr(r, "_doc", {}).get("$set", {}).get("status") == "sent"]
        if self.name == OUTBOX and marked:
            crash_before_marking(marked)
        return real["bulk_write"](self, requests, *args, **kwargs)

    for name in ("update_one", "update_many"):
        monkeypatch.setattr(Collection, name, crashing(name))
    monkeypatch.setattr(Collection, "bulk_write", crashing_bulk)
    crashes = 0
    while pending_count(queue_db):
        relay = Relay(queue_db, broker_settings, "queue", batch_size=10)  # a new process after each crash
        try:
            while relay.publish_pending():
                pass
        except RelayCrash:
            crashes += 1
        finally:
            relay.close()
    monkeypatch.undo()
    assert crashes >= 5

    worker = Worker(broker_settings).start()
    try:
        wait_until(lambda: queue_depth(broker, QUEUE) == 0 and rating.opportunities.count_documents({}) >= 200,
                   timeout=45, interval=0.5)
    finally:
        worker.stop()
    deliveries = drain(broker_settings.amqp_url, AUDIT)
    check.deliveries = len(deliveries)
    assert len(deliveries) == len(events) + len(resent), "each crash sent its confirmed batch twice"
    effects_of(rating, check)
    assert_clean(check)


def test_poison_messages_are_dead_lettered_with_the_reason_and_traffic_flows(broker_settings, broker, service_db, checker):
    check = checker("6. poison messages", "300 TicketServed with 30 poison messages among them")
    rating = service_db("rating")
    poison = [
        b"{not json",
        b"\xff\xfe binary",
        json.dumps({"event_id": "x", "type": "TicketServed", "payload": {}}).encode(),  # not an envelope
        json.dumps({**served(0), "type": "RatingGiven"}).encode(),  # the wrong event on this queue
        json.dumps({**served(0), "payload": {"ticket_id": 7, "ward_id": WARD}}).encode(),  # against the schema
    ]
    worker = Worker(broker_settings).start()
    try:
        sent_poison = 0
        for n in range(300):
            if n % 10 == 5:
                publish(broker, poison[sent_poison % len(poison)])
                sent_poison += 1
            event = served(n)
            publish(broker, json.dumps(event).encode())
            check.ack(event["payload"]["ticket_id"])
        wait_until(lambda: rating.opportunities.count_documents({}) >= 300
                   and queue_depth(broker, QUEUE + ".dead") >= sent_poison, timeout=45, interval=0.5)
        time.sleep(1.0)  # a hot loop would keep redelivering: give it the chance to show
        dead = drain(broker_settings.amqp_url, QUEUE + ".dead")
        assert worker.process.poll() is None, "the worker survived the poison"
    finally:
        worker.stop()
    effects_of(rating, check)
    assert_clean(check)
    assert len(dead) == sent_poison, f"{len(dead)} dead letters for {sent_poison} poison messages"
    assert all(headers.get("x-motcua-error") for headers, _ in dead)
    assert sorted(body for _, body in dead) == sorted(poison[i % len(poison)] for i in range(sent_poison))
    assert queue_depth(broker, QUEUE) == 0 and queue_depth(broker, QUEUE + ".retry") == 0
