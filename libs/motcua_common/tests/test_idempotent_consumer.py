"""handle_idempotent, against the real database: a change idempotent by itself is applied
without a transaction, then marked; a redelivery is a duplicate and changes nothing, a
worker killed between the change and its mark loses nothing, and two deliveries racing to
create one document both end well."""
from __future__ import annotations

import threading
import uuid

import pytest
from pymongo import MongoClient, monitoring

from motcua_common.consumer import PROCESSED, ensure_processed_index, handle_idempotent
from motcua_common.events import new_event, parse_envelope


def served(ticket_id: str):
    return parse_envelope(new_event("TicketServed", "w1", {
        "ticket_id": ticket_id, "ward_id": "w1", "service_code": "HT", "counter_id": "q1"}))


def upsert_line(db, event):
    """What the queue's activity read model does: one upsert of constant fields."""
    return lambda: db.lines.update_one({"_id": event["ticket_id"]},
                                       {"$setOnInsert": {"ward_id": "w1"}, "$set": {"served": 1}}, upsert=True)


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.seen: list[dict] = []

    def started(self, event):
        self.seen.append({"name": event.command_name, "transaction": "txnNumber" in event.command})

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def db(service_db):
    database = service_db("idempotent")
    ensure_processed_index(database)
    return database


def test_applied_once_then_answered_as_a_duplicate_without_a_transaction(db, settings):
    commands = Commands()
    client = MongoClient(settings.mongo_url, event_listeners=[commands])
    try:
        mine = client[db.name]
        event = served(str(uuid.uuid4()))
        assert handle_idempotent(mine, "queue", event, upsert_line(mine, event)) == "processed"
        assert handle_idempotent(mine, "queue", event, upsert_line(mine, event)) == "duplicate"
        sent = list(commands.seen)  # (closing the client adds its endSessions)
    finally:
        client.close()
    assert db.lines.count_documents({"_id": event["ticket_id"], "served": 1}) == 1
    assert db[PROCESSED].count_documents({"_id": f"queue:{event.event_id}"}) == 1
    # The mark looked for, the change, then the mark: plain commands, none of them in a
    # transaction (no commitTransaction, no txnNumber); a duplicate is only looked for.
    assert [c["name"] for c in sent] == ["find", "update", "insert", "find"], sent
    assert not any(c["transaction"] for c in sent)


def test_a_worker_killed_between_the_change_and_its_mark_loses_nothing(db):
    event = served(str(uuid.uuid4()))
    upsert_line(db, event)()  # applied, then the worker died before marking it
    assert db[PROCESSED].count_documents({"_id": f"queue:{event.event_id}"}) == 0
    # The broker redelivers it: applied again (nothing moves), and marked this time.
    assert handle_idempotent(db, "queue", event, upsert_line(db, event)) == "processed"
    assert list(db.lines.find({"_id": event["ticket_id"]}, {"_id": 0})) == [{"ward_id": "w1", "served": 1}]
    assert handle_idempotent(db, "queue", event, upsert_line(db, event)) == "duplicate"


def test_deliveries_racing_to_create_one_document_both_end_well(db):
    """Eight handlers of eight events about one ticket, started together: one document, eight
    marks, no error (an upsert that lost the race to insert is applied again and matches)."""
    ticket = str(uuid.uuid4())
    events = [served(ticket) for _ in range(8)]
    barrier = threading.Barrier(len(events))
    outcomes: list = [None] * len(events)

    def run(i):
        barrier.wait()
        try:
            outcomes[i] = handle_idempotent(db, "queue", events[i], upsert_line(db, events[i]))
        except Exception as exc:  # kept for the assertion below
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == ["processed"] * len(events)
    assert db.lines.count_documents({"_id": ticket}) == 1
    assert db[PROCESSED].count_documents({"_id": {"$in": [f"queue:{e.event_id}" for e in events]}}) == len(events)
