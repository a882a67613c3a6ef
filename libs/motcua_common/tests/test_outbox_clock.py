"""A ward's publication order (outbox._next_seq) without making its writers conflict.

The stall of issue 23: with the ward's clock document read and written inside every
change's transaction, sixteen kiosks of one ward conflicted on it, each loser retried under
pymongo's growing backoff, and tickets came back together after up to 6 s."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from motcua_common import outbox
from motcua_common.events import new_event

WARD = "dn-hai-chau"


@pytest.fixture
def db(service_db):
    return service_db("queue")


def _event(number: int) -> dict:
    return new_event("TicketIssued", WARD, {"ticket_id": f"t-{number}", "ward_id": WARD, "number": f"A{number:03d}"})


def test_concurrent_changes_of_one_ward_never_conflict_on_its_clock(db):
    writers = 6
    outbox.ensure_outbox_indexes(db)  # the collections exist, as after `prepare`
    db.create_collection("things")
    # Every writer's transaction is open (its own document written) before any stores its
    # event: with the clock inside the transactions, all but one would conflict and retry.
    all_open = threading.Barrier(writers, timeout=20)
    attempts, lock, failures = [0], threading.Lock(), []

    def write(number: int) -> None:
        def change(session):
            with lock:
                attempts[0] += 1
                first = attempts[0] <= writers
            db.things.insert_one({"_id": attempts[0]}, session=session)
            if first:
                all_open.wait()

        try:
            outbox.commit(db, change, [_event(number)])
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert attempts[0] == writers, f"{attempts[0] - writers} transactions retried after a conflict"
    seqs = [doc["seq"] for doc in db[outbox.OUTBOX].find()]
    assert len(seqs) == writers and len(set(seqs)) == writers, "each event its own place in the ward's order"


def test_a_later_write_is_ordered_after_an_earlier_one_whatever_the_writer_s_clock(db):
    now = datetime.now(timezone.utc)
    first = outbox._next_seq(db, WARD, now)
    behind = outbox._next_seq(db, WARD, now - timedelta(seconds=4))  # a process 4 s behind
    ahead = outbox._next_seq(db, WARD, now + timedelta(seconds=4))
    assert first < behind < ahead
    assert behind - first == timedelta(milliseconds=1)
    assert outbox._next_seq(db, "other-ward", now - timedelta(seconds=4)) < first  # per ward


def test_a_step_taken_before_the_change_is_the_event_s_even_when_the_transaction_is_retried(db):
    from pymongo.errors import OperationFailure

    outbox.ensure_outbox_indexes(db)
    db.create_collection("things")
    now = datetime.now(timezone.utc)
    counter = "numbers.dtoday.sA.value"
    taken = outbox.step_clock(db, WARD, now, {counter: {"$add": [{"$ifNull": [f"${counter}", 0]}, 1]}})
    assert taken["numbers"]["dtoday"]["sA"]["value"] == 1, "the caller's fields change in the same update"
    attempts = []

    def change(session):
        attempts.append(1)
        db.things.insert_one({"_id": len(attempts)}, session=session)
        if len(attempts) == 1:
            error = OperationFailure("write conflict")
            error._add_error_label("TransientTransactionError")
            raise error

    outbox.commit(db, change, [_event(1)], taken={WARD: taken["last"]})
    assert len(attempts) == 2
    stored = list(db[outbox.OUTBOX].find())
    assert [d["seq"] for d in stored] == [taken["last"]], "one event, the step taken before, kept on the retry"
    assert outbox._next_seq(db, WARD, now) > taken["last"], "the clock went on from that step"
