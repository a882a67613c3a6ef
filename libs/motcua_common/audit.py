"""The audit trail: an append-only, hash-chained log of what officers (and the system on
their behalf) did, in the service's own database (collection `audit_log`).

Each record is `{_id: seq, at, actor_id, actor_role, action, subject_type, subject_id,
ward_id, outcome, client_hash?, details, prev_hash, hash}`: `seq` counts 1, 2, 3… per
database, `prev_hash` is the previous record's `hash` (GENESIS before the first) and
`hash = sha256(canonical JSON of the record without "hash")`. Editing, removing or
reordering any record breaks the chain at that record, and `verify` says where.

`details` carries ids of records and the NAMES of fields changed, never personal values
(no national id, phone, name or address; the client's address only as `client_hash`).

Appending never makes two writers wait on each other. `append` only inserts the record
into `audit_pending` (its own new document; with a `session`, in the caller's transaction,
so the business write and its audit record are stored both or neither). `chain_pending`
then moves pending records onto the chain, oldest first, a batch per transaction: it reads
the head (`audit_head`, one counter document), inserts the records with `_id = seq`,
moves the head and deletes them from `audit_pending` together. Why not chain in the
caller's transaction, as the first version did: every append moved the one head
document, so any two audited actions of the whole province conflicted on it and one was
retried under a growing backoff (dossier actions waited up to 27 s in the province's day).
Now only chainers can conflict, off every request's path, and a conflict retries the
whole batch: a record is chained exactly once.

The relay process of every service runs the chainer (`run_chainer`), so records are on the
chain within a second; `records` and `verify` chain what is pending first, so a reader
(the data export, `motcua audit verify`) always sees every committed record.

The store never updates or deletes a record, except retention (`prune`): the oldest
records past the retention period are removed and the checkpoint record
`{_id: "checkpoint", seq, hash}` remembers the last one removed, so `verify` starts from
it. Retention periods per kind are settings: MOTCUA_RETENTION_<KIND>_DAYS
(`retention_days`)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import BulkWriteError, CollectionInvalid, DuplicateKeyError, OperationFailure, PyMongoError

log = logging.getLogger(__name__)

AUDIT_LOG = "audit_log"
AUDIT_HEAD = "audit_head"
AUDIT_PENDING = "audit_pending"
HEAD_ID = "head"
CHECKPOINT_ID = "checkpoint"
GENESIS = "0" * 64
# Records chained a transaction, and how often the chainer looks for pending ones.
CHAIN_BATCH = 500
CHAIN_EVERY_SECONDS = 0.5
# Every this many records the chainer also applies the audit retention (a cheap indexed
# query when nothing is due), so a service that appends keeps its log within the period
# even when nobody runs `motcua audit prune`.
PRUNE_EVERY = 1000

# Retention per kind of record, in days (MOTCUA_RETENTION_<KIND>_DAYS overrides).
RETENTION_DEFAULT_DAYS = {
    "audit": 5 * 365,          # the audit trail: five years
    "notifications": 365,      # SMS and e-mails sent (masked recipient, template, params): a year
    "attachments": 5 * 365,    # scanned papers of a dossier, counted from the day it closed
}
FIELDS = ("_id", "at", "actor_id", "actor_role", "action", "subject_type", "subject_id", "ward_id", "outcome",
          "client_hash", "details", "prev_hash")


def retention_days(kind: str, settings=None, env: Mapping[str, str] | None = None) -> int:
    """Days records of `kind` are kept: MOTCUA_RETENTION_<KIND>_DAYS from `settings.extra`
    or the environment, else RETENTION_DEFAULT_DAYS[kind]. 0 or less: kept for ever."""
    name = f"MOTCUA_RETENTION_{kind.upper()}_DAYS"
    extra = getattr(settings, "extra", None) or {}
    raw = extra.get(name) if name in extra else (os.environ if env is None else env).get(name)
    if raw in (None, ""):
        return RETENTION_DEFAULT_DAYS[kind]
    try:
        return int(raw)
    except (TypeError, ValueError):
        log.warning("%s is not a whole number of days; the default is used", name)
        return RETENTION_DEFAULT_DAYS[kind]


def ensure_ttl_index(collection, field: str, days: int, name: str) -> None:
    """A TTL index on `field` expiring documents `days` after it (none when days <= 0);
    a changed period is applied to the existing index (collMod), or it is rebuilt."""
    existing = collection.index_information().get(name)
    if days <= 0:
        if existing is not None:
            collection.drop_index(name)
        return
    seconds = int(days) * 86400
    if existing is not None and existing.get("expireAfterSeconds") == seconds:
        return
    if existing is not None:
        try:
            collection.database.command("collMod", collection.name,
                                        index={"name": name, "expireAfterSeconds": seconds})
            return
        except OperationFailure:
            collection.drop_index(name)
    collection.create_index([(field, ASCENDING)], expireAfterSeconds=seconds, name=name)


# ---------------------------------------------------------------- the record and its hash
def _moment(value) -> datetime:
    """UTC, to the millisecond: what the database keeps, so the hash survives a round trip."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _plain(value):
    if isinstance(value, datetime):
        return _moment(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def record_hash(record: Mapping) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the record without `hash`."""
    body = {k: _plain(v) for k, v in record.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def client_hash(client: str | None) -> str | None:
    """The caller's address, not kept as such: a short digest tells repeats apart."""
    if not client:
        return None
    return hashlib.sha256(f"motcua-audit|{client}".encode()).hexdigest()[:16]


def entry(*, action: str, actor_id: str | None, actor_role: str | None = None, subject_type: str | None = None,
          subject_id: str | None = None, ward_id: str | None = None, outcome: str = "ok", client: str | None = None,
          at: datetime | None = None, details: Mapping | None = None) -> dict:
    """What `append` stores, before the chain fields. `client` (an address) is kept hashed."""
    record = {"at": at, "actor_id": actor_id, "actor_role": actor_role, "action": action,
              "subject_type": subject_type, "subject_id": subject_id, "ward_id": ward_id, "outcome": outcome,
              "details": dict(details or {})}
    hashed = client_hash(client)
    if hashed:
        record["client_hash"] = hashed
    return record


# ---------------------------------------------------------------- appending
def _head(db: Database, session: ClientSession | None) -> tuple[int, str]:
    """(seq, hash) of the last record: the counter document, or any record past it (a
    chain written by an older version, whose head could lag a record), or the checkpoint,
    or genesis."""
    head = db[AUDIT_HEAD].find_one({"_id": HEAD_ID}, session=session)
    if head is None:
        head = db[AUDIT_LOG].find_one({"_id": CHECKPOINT_ID}, session=session) or {"seq": 0, "hash": GENESIS}
    seq, digest = int(head["seq"]), head["hash"]
    # Reads by exact _id only: a range or a sort over the log would read the whole
    # collection on the embedded database at every batch (see mongo.update_and_read).
    while True:
        later = db[AUDIT_LOG].find_one({"_id": seq + 1}, {"hash": 1}, session=session)
        if later is None:
            return seq, digest
        seq, digest = seq + 1, later["hash"]


def append(db: Database, record: Mapping, session: ClientSession | None = None, now: datetime | None = None) -> dict:
    """Keep `record` (see `entry`) for the chain: one insert into `audit_pending`, in the
    caller's transaction when `session` is given; `chain_pending` chains it. The pending
    record (its `_id` is not its chain seq)."""
    pending = {k: record.get(k) for k in FIELDS if k not in ("_id", "prev_hash", "client_hash")}
    if record.get("client_hash"):
        pending["client_hash"] = record["client_hash"]
    pending["at"] = _moment(record.get("at") or now or datetime.now(timezone.utc))
    pending["details"] = dict(record.get("details") or {})
    pending["_id"] = ObjectId()
    db[AUDIT_PENDING].insert_one(pending, session=session)
    return pending


def chain_pending(db: Database, batch: int = CHAIN_BATCH) -> int:
    """Move up to `batch` pending records onto the chain, oldest first, in one
    transaction (records, head and the pending documents' removal together); how many."""

    def move(session: ClientSession) -> tuple[int, int]:
        waiting = list(db[AUDIT_PENDING].find({}, session=session).sort("_id", ASCENDING).limit(batch))
        if not waiting:
            return 0, 0
        seq, previous = _head(db, session)
        chained = []
        for record in waiting:
            seq += 1
            stored = {**{k: v for k, v in record.items() if k != "_id"}, "_id": seq, "prev_hash": previous}
            stored["hash"] = previous = record_hash(stored)
            chained.append(stored)
        # Head first: two chainers moving it conflict at once, and one retries its batch.
        db[AUDIT_HEAD].update_one({"_id": HEAD_ID}, {"$set": {"seq": seq, "hash": previous}},
                                  upsert=True, session=session)
        try:
            db[AUDIT_LOG].insert_many(chained, session=session)
        except (DuplicateKeyError, BulkWriteError) as exc:
            # A writer of an older version appended outside any transaction after our
            # snapshot: the batch is run again on the new head.
            exc._add_error_label("TransientTransactionError")
            raise
        db[AUDIT_PENDING].delete_many({"_id": {"$in": [r["_id"] for r in waiting]}}, session=session)
        return len(chained), seq

    from .mongo import in_transaction

    # Most polls find nothing: one plain read then, no transaction (every transaction's
    # statements queue on the embedded database's transaction registry).
    if db[AUDIT_PENDING].find_one({}, {"_id": 1}) is None:
        return 0
    moved, last = in_transaction(db, move)
    if moved and last // PRUNE_EVERY != (last - moved) // PRUNE_EVERY:
        try:
            prune(db, retention_days("audit"))
        except Exception:  # retention is never a reason to stop chaining
            log.exception("audit retention failed")
    return moved


def settle(db: Database) -> int:
    """Chain everything pending now; how many records were chained."""
    total = 0
    while True:
        moved = chain_pending(db)
        total += moved
        if moved < CHAIN_BATCH:
            return total


def unchained(db: Database) -> int:
    """How many records wait to be chained."""
    return db[AUDIT_PENDING].estimated_document_count()


def run_chainer(db: Database, stopping: threading.Event, service: str, every: float = CHAIN_EVERY_SECONDS) -> None:
    """Chain pending records until `stopping` is set (the relay process runs this in a
    thread of its own). A database that does not answer is tried again, more slowly."""
    from . import metrics

    pause = every
    while not stopping.is_set():
        try:
            moved = settle(db)
            metrics.AUDIT_UNCHAINED.labels(service).set(unchained(db))
            if moved:
                log.debug("audit records chained", extra={"database": db.name, "chained": moved})
            pause = every
        except PyMongoError as exc:
            log.warning("audit chaining waits for the database: %s", exc.__class__.__name__)
            pause = min(pause * 2, 10.0)
        stopping.wait(pause)


def start_chainer(db: Database, stopping: threading.Event, service: str) -> threading.Thread:
    thread = threading.Thread(target=run_chainer, args=(db, stopping, service), name="audit-chainer", daemon=True)
    thread.start()
    return thread


def ensure_indexes(db: Database) -> None:
    """`at` for retention and reading a period; (subject_type, subject_id) for a person's own
    entries (the data export); the _id index is the chain's order and its uniqueness."""
    db[AUDIT_LOG].create_index([("at", ASCENDING)], name="at")
    db[AUDIT_LOG].create_index([("subject_type", ASCENDING), ("subject_id", ASCENDING)], name="subject")
    # Appends insert into it inside business transactions: it exists before the first one
    # (a transaction that has to create a collection fails on MongoDB before 4.4).
    if AUDIT_PENDING not in db.list_collection_names(filter={"name": AUDIT_PENDING}):
        try:
            db.create_collection(AUDIT_PENDING)
        except CollectionInvalid:
            pass  # another process created it first


def records(db: Database, query: Mapping | None = None) -> Iterable[dict]:
    """The chain's records matching `query`, in order (the checkpoint left out), after
    chaining what is pending."""
    settle(db)
    return db[AUDIT_LOG].find({**(query or {}), "_id": {"$type": "number"}}).sort("_id", ASCENDING)


# ---------------------------------------------------------------- checking the chain
def verify(db: Database, chain_first: bool = True) -> tuple[bool, int | None, int]:
    """Walk the chain from the checkpoint (or the start), after chaining what is pending
    (unless `chain_first` is false): (ok, first bad seq or None, records checked). A record
    is bad when its hash is not its content's, its prev_hash is not the previous record's
    hash, or its seq does not follow (one removed)."""
    if chain_first:
        settle(db)
    checkpoint = db[AUDIT_LOG].find_one({"_id": CHECKPOINT_ID})
    seq, previous = (int(checkpoint["seq"]), checkpoint["hash"]) if checkpoint else (0, GENESIS)
    count = 0
    for record in db[AUDIT_LOG].find({"_id": {"$type": "number"}}).sort("_id", ASCENDING):
        count += 1
        if record["_id"] != seq + 1:
            return False, seq + 1, count  # a record missing (or an unexpected seq) here
        if record.get("prev_hash") != previous or record.get("hash") != record_hash(record):
            return False, int(record["_id"]), count
        seq, previous = int(record["_id"]), record["hash"]
    head = db[AUDIT_HEAD].find_one({"_id": HEAD_ID})
    if head is not None and int(head["seq"]) > seq:
        return False, seq + 1, count  # the newest records were removed
    return True, None, count


# ---------------------------------------------------------------- retention
PRUNE_BATCH = 5000


def prune(db: Database, days: int, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Remove the records older than `days` (oldest first, never the newest record, at
    most `batch` a call) and move the checkpoint to the last one removed, in one
    transaction; how many were removed. days <= 0: nothing is removed. Every read and
    delete goes by exact _id, so a call costs the same however long the log is."""
    if days <= 0:
        return 0
    before = _moment(now or datetime.now(timezone.utc)) - timedelta(days=days)
    checkpoint = db[AUDIT_LOG].find_one({"_id": CHECKPOINT_ID})
    first = int(checkpoint["seq"]) + 1 if checkpoint else 1
    oldest = db[AUDIT_LOG].find_one({"_id": first}, {"at": 1})
    if oldest is None or _moment(oldest["at"]) >= before:
        return 0  # nothing due: the oldest record is within the period (one read by _id)
    newest, _ = _head(db, None)
    # The oldest records, in seq order (by exact _id), up to the first still within the
    # period; never the newest one (the head of the chain stays readable).
    last = None
    seq = first
    while seq < newest and seq - first < batch:
        record = db[AUDIT_LOG].find_one({"_id": seq}, {"at": 1, "hash": 1})
        if record is None or _moment(record["at"]) >= before:
            break
        last, seq = record, seq + 1
    if last is None:
        return 0
    upto = int(last["_id"])

    def change(session: ClientSession) -> int:
        removed = db[AUDIT_LOG].delete_many({"_id": {"$in": list(range(first, upto + 1))}},
                                            session=session).deleted_count
        db[AUDIT_LOG].replace_one({"_id": CHECKPOINT_ID},
                                  {"_id": CHECKPOINT_ID, "seq": upto, "hash": last["hash"],
                                   "pruned_at": _moment(now or datetime.now(timezone.utc))},
                                  upsert=True, session=session)
        return removed

    from .mongo import in_transaction

    removed = in_transaction(db, change)
    if removed:
        log.info("audit records past retention removed", extra={"database": db.name, "removed": removed,
                                                                 "checkpoint_seq": upto})
    return removed


def prune_all(db: Database, days: int, now: datetime | None = None) -> int:
    """`prune` batch after batch until nothing is due (after chaining what is pending);
    how many were removed."""
    settle(db)
    removed = 0
    while True:
        done = prune(db, days, now)
        removed += done
        if done < PRUNE_BATCH:
            return removed
