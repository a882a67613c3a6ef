"""handle_once's group commit, against the real database: events handled at the same time
share a transaction, yet each takes effect once, atomically with its mark, and one
member's failure or duplicate never changes the verdict of another."""
from __future__ import annotations

import threading
import uuid

import pytest
from pymongo.errors import DuplicateKeyError

from motcua_common.consumer import PROCESSED, GroupCommit, handle_once
from motcua_common.events import new_event, parse_envelope


def event(n: int):
    return parse_envelope(new_event("DossierSubmitted", "w1", {
        "dossier_id": str(uuid.uuid4()), "receipt_code": f"GC-{n:04d}", "procedure_code": "KS01",
        "ward_id": "w1", "channel": "online", "due_date": "2026-12-01"}))


def insert_effect(db, ev):
    return lambda session: db.effects.insert_one({"event_id": ev.event_id}, session=session)


def run_together(calls) -> list:
    """Start every call at once (a barrier), as a worker's handlers run side by side."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # the caller's own outcome, kept for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def db(service_db):
    return service_db("groupcommit")


def test_concurrent_events_each_take_effect_once_and_share_transactions(db, monkeypatch):
    groups = []
    original = GroupCommit._run
    monkeypatch.setattr(GroupCommit, "_run", lambda self, group: (groups.append(len(group)), original(self, group)))
    events = [event(n) for n in range(40)]
    results = run_together([lambda ev=ev: handle_once(db, "centre", ev, insert_effect(db, ev)) for ev in events])
    assert results == ["processed"] * 40
    assert db.effects.count_documents({}) == 40
    assert db[PROCESSED].count_documents({}) == 40
    assert max(groups) > 1, f"nothing was grouped: {groups}"
    assert sum(groups) == 40
    # Redelivered, all at once again: every one is a duplicate, nothing changes.
    again = run_together([lambda ev=ev: handle_once(db, "centre", ev, insert_effect(db, ev)) for ev in events])
    assert again == ["duplicate"] * 40
    assert db.effects.count_documents({}) == 40


def test_a_failing_member_fails_alone_and_its_group_still_commits(db):
    events = [event(n) for n in range(20)]
    bad = events[7]

    def work(ev):
        def apply(session):
            db.effects.insert_one({"event_id": ev.event_id}, session=session)
            if ev is bad:
                raise RuntimeError("this handler cannot handle it")
        return apply

    results = run_together([lambda ev=ev: handle_once(db, "centre", ev, work(ev)) for ev in events])
    assert isinstance(results[7], RuntimeError)
    assert [r for i, r in enumerate(results) if i != 7] == ["processed"] * 19
    stored = {d["event_id"] for d in db.effects.find()}
    assert bad.event_id not in stored, "the failed event's writes were undone with it"
    assert len(stored) == 19
    assert db[PROCESSED].count_documents({"_id": f"centre:{bad.event_id}"}) == 0, "so that a retry can handle it"


def test_a_duplicate_inside_a_group_is_answered_as_one(db):
    seen_before = event(1)
    handle_once(db, "centre", seen_before, insert_effect(db, seen_before))
    fresh = [event(n) for n in range(2, 12)]
    twice = event(99)
    batch = [seen_before, twice, twice, *fresh]
    results = run_together([lambda ev=ev: handle_once(db, "centre", ev, insert_effect(db, ev)) for ev in batch])
    assert results[0] == "duplicate"
    assert sorted(results[1:3]) == ["duplicate", "processed"]
    assert results[3:] == ["processed"] * 10
    assert db.effects.count_documents({"event_id": twice.event_id}) == 1
    assert db.effects.count_documents({}) == 12


def test_a_handlers_own_duplicate_key_still_means_duplicate(db):
    """notify's work raises DuplicateKeyError when its own unique key says the SMS exists:
    alone or grouped, handle_once answers "duplicate" for it and nothing for the others."""
    db.effects.create_index("key", unique=True)
    db.effects.insert_one({"key": "already-there"})
    events = [event(n) for n in range(10)]

    def work(ev, key):
        return lambda session: db.effects.insert_one({"key": key}, session=session)

    calls = [lambda ev=ev, i=i: handle_once(db, "centre", ev, work(ev, "already-there" if i == 4 else ev.event_id))
             for i, ev in enumerate(events)]
    results = run_together(calls)
    assert results[4] == "duplicate"
    assert [r for i, r in enumerate(results) if i != 4] == ["processed"] * 9
    assert db.effects.count_documents({}) == 10


def test_one_at_a_time_is_unchanged(db):
    ev = event(1)
    assert handle_once(db, "centre", ev, insert_effect(db, ev)) == "processed"
    assert handle_once(db, "centre", ev, insert_effect(db, ev)) == "duplicate"
    with pytest.raises(DuplicateKeyError):
        db[PROCESSED].insert_one({"_id": f"centre:{ev.event_id}"})
