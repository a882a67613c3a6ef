"""mongo.in_transaction against the embedded database: a transaction that keeps failing
with transient errors is given up after RETRY_SECONDS, not pymongo's two minutes (a kiosk
waited that long while the database's disk was full)."""
from __future__ import annotations

import time

import pytest
from pymongo.errors import OperationFailure

from motcua_common import mongo


def test_a_transaction_failing_transiently_is_abandoned_after_the_retry_window(service_db, monkeypatch):
    monkeypatch.setattr(mongo, "RETRY_SECONDS", 0.5)
    db = service_db("queue")
    db.create_collection("things")
    runs = []

    def always_failing(session):
        runs.append(time.monotonic())
        db.things.insert_one({"n": len(runs)}, session=session)
        failure = OperationFailure("the commit could not be written", code=112)
        failure._add_error_label("TransientTransactionError")
        raise failure

    started = time.monotonic()
    with pytest.raises(mongo.TransactionAbandoned):
        mongo.in_transaction(db, always_failing)
    assert time.monotonic() - started < 5 and len(runs) >= 2
    assert db.things.count_documents({}) == 0  # every attempt was rolled back


def test_a_transaction_that_conflicts_once_still_commits(service_db):
    db = service_db("queue")
    db.create_collection("things")
    runs = []

    def conflicting_once(session):
        runs.append(1)
        db.things.insert_one({"n": len(runs)}, session=session)
        if len(runs) == 1:
            failure = OperationFailure("write conflict", code=112)
            failure._add_error_label("TransientTransactionError")
            raise failure
        return "stored"

    assert mongo.in_transaction(db, conflicting_once) == "stored"
    assert [d["n"] for d in db.things.find()] == [2]
