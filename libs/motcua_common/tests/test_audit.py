"""The hash-chained audit log, against the real (embedded) database: appends wait in
`audit_pending` until chained, an edit or a removal by hand is found by `verify` at the
first bad record, concurrent writers (threads, with and without a transaction) never make
each other retry and never fork the chain, concurrent chainers chain each record once, and
retention removes the oldest records behind a checkpoint that verification starts from."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from motcua_common import audit
from motcua_common.mongo import in_transaction

T0 = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=timezone.utc)


def _appended(db, *entries) -> list[dict]:
    """Append and chain: the chain's records of `entries`, in order."""
    for record in entries:
        audit.append(db, record)
    audit.settle(db)
    return list(db.audit_log.find({"_id": {"$type": "number"}}).sort("_id", 1))[-len(entries):]


def _entry(n: int, at: datetime = T0, **extra) -> dict:
    return audit.entry(action="read_dossier", actor_id=f"officer-{n % 3}", actor_role="officer",
                       subject_type="dossier", subject_id=f"d-{n}", ward_id="tn-song-cong", at=at,
                       client="10.0.0.7", details={"fields": ["form", "citizen_name"]}, **extra)


def test_appended_records_chain_and_verify(service_db):
    db = service_db("identity")
    audit.append(db, _entry(1))
    audit.append(db, _entry(2))
    assert db.audit_log.count_documents({}) == 0 and db.audit_pending.count_documents({}) == 2
    assert audit.chain_pending(db) == 2 and db.audit_pending.count_documents({}) == 0
    first, second = db.audit_log.find_one({"_id": 1}), db.audit_log.find_one({"_id": 2})
    assert (first["subject_id"], second["subject_id"]) == ("d-1", "d-2")  # in the order appended
    assert first["prev_hash"] == audit.GENESIS and second["prev_hash"] == first["hash"]
    stored = db.audit_log.find_one({"_id": 1})
    assert audit.record_hash(stored) == stored["hash"]  # the hash survives the database's round trip
    assert stored["client_hash"] and "10.0.0.7" not in str(stored)
    assert audit.verify(db) == (True, None, 2)


def test_an_edit_by_hand_is_found_at_its_record(service_db):
    db = service_db("identity")
    _appended(db, *(_entry(n) for n in range(5)))
    db.audit_log.update_one({"_id": 3}, {"$set": {"actor_id": "someone-else"}})
    assert audit.verify(db) == (False, 3, 3)


def test_a_rehashed_edit_still_breaks_the_next_link(service_db):
    db = service_db("identity")
    _appended(db, *(_entry(n) for n in range(4)))
    edited = {**db.audit_log.find_one({"_id": 2}), "outcome": "denied"}
    edited["hash"] = audit.record_hash(edited)
    db.audit_log.replace_one({"_id": 2}, edited)
    assert audit.verify(db) == (False, 3, 3)


def test_a_removed_record_and_a_removed_tail_are_found(service_db):
    db = service_db("identity")
    _appended(db, *(_entry(n) for n in range(4)))
    db.audit_log.delete_one({"_id": 4})
    assert audit.verify(db)[:2] == (False, 4)
    db.audit_log.delete_one({"_id": 2})
    assert audit.verify(db)[:2] == (False, 2)


def test_concurrent_writers_and_chainers_never_fork_the_chain(service_db, settings):
    from motcua_common.mongo import connect

    errors: list[BaseException] = []
    stopping = threading.Event()

    def writer(k: int, transactional: bool) -> None:
        client = connect(settings)  # each its own client, as two API processes would be
        db = client[settings.database_name("identity")]
        try:
            for n in range(15):
                if transactional:
                    in_transaction(db, lambda s, n=n: (db.things.insert_one({"k": k, "n": n}, session=s),
                                                       audit.append(db, _entry(n), session=s)))
                else:
                    audit.append(db, _entry(n))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    def chainer() -> None:  # two relays of one service, each chaining while requests append
        client = connect(settings)
        try:
            audit.run_chainer(client[settings.database_name("identity")], stopping, "identity", every=0.01)
        finally:
            client.close()

    chainers = [threading.Thread(target=chainer) for _ in range(2)]
    threads = [threading.Thread(target=writer, args=(k, k % 2 == 0)) for k in range(4)]
    for t in chainers + threads:
        t.start()
    for t in threads:
        t.join()
    stopping.set()
    for t in chainers:
        t.join()
    assert not errors
    db = service_db("identity")
    assert audit.verify(db) == (True, None, 60)
    assert db.audit_log.count_documents({"_id": {"$type": "number"}}) == 60  # each record chained once
    assert db.audit_pending.count_documents({}) == 0
    assert db.things.count_documents({}) == 30  # each transactional write with its record
    assert db.audit_head.find_one({"_id": "head"})["seq"] == 60


def test_audited_transactions_do_not_conflict_with_each_other(service_db, settings):
    """Six actions in transactions open at once, each with its audit record: none is run
    again (with the record chained inside the action, they all moved one head document and
    all but one were retried)."""
    from motcua_common.mongo import connect

    db = service_db("identity")
    audit.ensure_indexes(db)  # the collections exist, as after `prepare`
    db.create_collection("things")
    runs: list[int] = []
    inside = threading.Barrier(6, timeout=20)
    errors: list[BaseException] = []

    def action(k: int) -> None:
        client = connect(settings)
        mine = client[settings.database_name("identity")]

        def work(session):
            first = k not in runs
            runs.append(k)
            mine.things.insert_one({"k": k}, session=session)
            audit.append(mine, _entry(k), session=session)
            if first:
                inside.wait()  # every transaction has written before any commits

        try:
            in_transaction(mine, work)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=action, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(runs) == list(range(6))  # each transaction ran once: nobody retried
    assert audit.settle(db) == 6 and audit.verify(db) == (True, None, 6)


def test_an_aborted_transaction_leaves_no_audit_record(service_db):
    db = service_db("identity")
    audit.ensure_indexes(db)

    def work(session):
        db.things.insert_one({"k": 1}, session=session)
        audit.append(db, _entry(1), session=session)
        raise ValueError("the business rule refused it")

    try:
        in_transaction(db, work)
    except ValueError:
        pass
    assert db.things.count_documents({}) == 0 and db.audit_pending.count_documents({}) == 0
    assert audit.verify(db) == (True, None, 0)


def test_the_chainer_chains_within_a_second_and_stops(service_db):
    db = service_db("identity")
    stopping = threading.Event()
    thread = audit.start_chainer(db, stopping, "identity")
    try:
        audit.append(db, _entry(1))
        deadline = time.monotonic() + 5
        while db.audit_log.find_one({"_id": 1}) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.audit_log.find_one({"_id": 1})["subject_id"] == "d-1"
    finally:
        stopping.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_lagging_head_of_an_older_chain_is_caught_up(service_db):
    db = service_db("identity")
    _appended(db, _entry(1), _entry(2))
    db.audit_head.update_one({"_id": "head"}, {"$set": {"seq": 1}})  # as an older writer could leave it
    [third] = _appended(db, _entry(3))
    assert third["_id"] == 3 and audit.verify(db) == (True, None, 3)


def test_retention_removes_the_oldest_behind_a_checkpoint(service_db):
    db = service_db("identity")
    _appended(db, *(_entry(n, at=T0 + timedelta(days=400 * n)) for n in range(6)))
    removed = audit.prune(db, days=1000, now=T0 + timedelta(days=2000))
    # ages 2000, 1600, 1200 days go; 800, 400 and 0 stay
    assert removed == 3
    assert sorted(r["_id"] for r in audit.records(db)) == [4, 5, 6]
    checkpoint = db.audit_log.find_one({"_id": "checkpoint"})
    assert checkpoint["seq"] == 3
    assert audit.verify(db) == (True, None, 3)
    assert _appended(db, _entry(7))[0]["_id"] == 7
    assert audit.verify(db) == (True, None, 4)
    assert audit.prune(db, days=1000, now=T0 + timedelta(days=2000)) == 0  # idempotent
    db.audit_log.update_one({"_id": "checkpoint"}, {"$set": {"hash": "f" * 64}})
    assert audit.verify(db) == (False, 4, 1)


def test_retention_keeps_the_newest_record(service_db):
    db = service_db("identity")
    _appended(db, *(_entry(n, at=T0) for n in range(3)))
    assert audit.prune(db, days=1, now=T0 + timedelta(days=30)) == 2
    assert [r["_id"] for r in audit.records(db)] == [3]
    assert audit.verify(db) == (True, None, 1)
    assert audit.prune(db, days=0, now=T0 + timedelta(days=30)) == 0


def test_retention_days_per_kind(settings):
    assert audit.retention_days("audit", env={}) == 5 * 365
    assert audit.retention_days("notifications", env={}) == 365
    assert audit.retention_days("attachments", env={"MOTCUA_RETENTION_ATTACHMENTS_DAYS": "30"}) == 30
    assert audit.retention_days("audit", env={"MOTCUA_RETENTION_AUDIT_DAYS": "many"}) == 5 * 365
    tuned = replace(settings, extra={"MOTCUA_RETENTION_NOTIFICATIONS_DAYS": "90"})
    assert audit.retention_days("notifications", tuned, env={}) == 90


def test_a_ttl_index_follows_its_setting(service_db):
    coll = service_db("notify").things
    audit.ensure_ttl_index(coll, "created_at", 365, "created_ttl")
    assert coll.index_information()["created_ttl"]["expireAfterSeconds"] == 365 * 86400
    audit.ensure_ttl_index(coll, "created_at", 30, "created_ttl")
    assert coll.index_information()["created_ttl"]["expireAfterSeconds"] == 30 * 86400
    audit.ensure_ttl_index(coll, "created_at", 0, "created_ttl")
    assert "created_ttl" not in coll.index_information()


def test_retention_goes_in_batches_by_exact_id(service_db):
    db = service_db("identity")
    _appended(db, *(_entry(n, at=T0) for n in range(7)))
    later = T0 + timedelta(days=30)
    assert audit.prune(db, days=1, now=later, batch=2) == 2
    assert db.audit_log.find_one({"_id": "checkpoint"})["seq"] == 2 and audit.verify(db) == (True, None, 5)
    assert audit.prune(db, days=1, now=later, batch=2) == 2
    assert audit.prune_all(db, days=1, now=later) == 2  # the newest record stays
    assert [r["_id"] for r in audit.records(db)] == [7] and audit.verify(db) == (True, None, 1)


def test_a_retried_transaction_is_counted_by_what_it_ran(service_db, settings):
    """Two transactions moving one document: the loser's retry is counted under its
    function's name (how a hot document shows in /metrics)."""
    from prometheus_client import REGISTRY

    from motcua_common.mongo import connect

    db = service_db("identity")
    db.create_collection("hot")
    db.hot.insert_one({"_id": "one", "n": 0})
    both_read = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def bump_the_hot_document() -> None:
        client = connect(settings)
        mine = client[settings.database_name("identity")]
        first = [True]

        def move_it(session):
            mine.hot.find_one({"_id": "one"}, session=session)
            if first[0]:
                first[0] = False
                both_read.wait()  # both transactions have read before either writes
            mine.hot.update_one({"_id": "one"}, {"$inc": {"n": 1}}, session=session)

        try:
            in_transaction(mine, move_it)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    labels = {"database": db.name, "work": "test_a_retried_transaction_is_counted_by_what_it_ran.bump_the_hot_document.move_it"}
    before = REGISTRY.get_sample_value("motcua_transaction_retries_total", labels) or 0
    threads = [threading.Thread(target=bump_the_hot_document) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert db.hot.find_one({"_id": "one"})["n"] == 2
    assert (REGISTRY.get_sample_value("motcua_transaction_retries_total", labels) or 0) - before >= 1
