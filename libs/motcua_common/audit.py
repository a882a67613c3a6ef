"""The audit trail: an append-only, hash-chained log of what officers (and the system on
their behalf) did, in the service's own database (collection `audit_log`).

Each record is `{_id: seq, at, actor_id, actor_role, action, subject_type, subject_id,
ward_id, outcome, client_hash?, details, prev_hash, hash}`: `seq` counts 1, 2, 3… per
database, `prev_hash` is the previous record's `hash` (GENESIS before the first) and
`hash = sha256(canonical JSON of the record without "hash")`. Editing, removing or
reordering any record breaks the chain at that record, and `verify` says where.

`details` carries ids of records and the NAMES of fields changed, never personal values
(no national id, phone, name or address; the client's address only as `client_hash`).

Appending is safe with several API processes: the next `seq` comes from the head
(`audit_head`, one counter document, and any record past it); the record is inserted with
`_id = seq`, so of two writers that read the same head exactly one wins (the other gets a
DuplicateKeyError outside a transaction, a write conflict inside one) and appends again
after the new head. With a `session`, the record and the head move in the caller's
transaction: the business write and its audit record are stored both or neither.

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
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

log = logging.getLogger(__name__)

AUDIT_LOG = "audit_log"
AUDIT_HEAD = "audit_head"
HEAD_ID = "head"
CHECKPOINT_ID = "checkpoint"
GENESIS = "0" * 64
APPEND_ATTEMPTS = 50
# Every this many records an append also applies the audit retention (a cheap indexed
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


class AuditChainBusy(RuntimeError):
    """Too many concurrent writers won the same seq in a row (never seen in practice)."""


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
    writer that died between its record and the counter), or the checkpoint, or genesis."""
    head = db[AUDIT_HEAD].find_one({"_id": HEAD_ID}, session=session)
    if head is None:
        head = db[AUDIT_LOG].find_one({"_id": CHECKPOINT_ID}, session=session) or {"seq": 0, "hash": GENESIS}
    seq, digest = int(head["seq"]), head["hash"]
    # Reads by exact _id only: a range or a sort over the log would read the whole
    # collection on the embedded database at every append (see mongo.update_and_read).
    while True:
        later = db[AUDIT_LOG].find_one({"_id": seq + 1}, {"hash": 1}, session=session)
        if later is None:
            return seq, digest
        seq, digest = seq + 1, later["hash"]


def append(db: Database, record: Mapping, session: ClientSession | None = None, now: datetime | None = None) -> dict:
    """Append `record` (see `entry`) to the chain; the stored record. With `session` it
    is written in that transaction (a concurrent writer makes the transaction retry)."""
    base = {k: record.get(k) for k in FIELDS if k not in ("_id", "prev_hash", "client_hash")}
    if record.get("client_hash"):
        base["client_hash"] = record["client_hash"]
    base["at"] = _moment(record.get("at") or now or datetime.now(timezone.utc))
    base["details"] = dict(record.get("details") or {})
    for attempt in range(APPEND_ATTEMPTS):
        seq, previous = _head(db, session)
        stored = {"_id": seq + 1, **base, "prev_hash": previous}
        stored["hash"] = record_hash(stored)
        if session is not None:
            # Head first: two transactions moving it conflict, and one of them retries whole.
            db[AUDIT_HEAD].update_one({"_id": HEAD_ID}, {"$set": {"seq": seq + 1, "hash": stored["hash"]}},
                                      upsert=True, session=session)
            try:
                db[AUDIT_LOG].insert_one(stored, session=session)
            except DuplicateKeyError as exc:
                # A writer outside any transaction took this seq after our snapshot: the
                # whole transaction is run again (with_transaction retries transient errors).
                exc._add_error_label("TransientTransactionError")
                raise
        else:
            try:
                db[AUDIT_LOG].insert_one(stored)
            except DuplicateKeyError:
                continue  # another writer took this seq: read the new head
            db[AUDIT_HEAD].update_one({"_id": HEAD_ID, "seq": {"$lt": seq + 1}},
                                      {"$set": {"seq": seq + 1, "hash": stored["hash"]}})
            _advance_head_if_missing(db, seq + 1, stored["hash"])
        if (seq + 1) % PRUNE_EVERY == 0 and session is None:
            try:
                prune(db, retention_days("audit"), now=base["at"])
            except Exception:  # retention is never a reason to refuse the business write
                log.exception("audit retention failed")
        return stored
    raise AuditChainBusy(f"{db.name}: no free audit seq after {APPEND_ATTEMPTS} attempts")


def _advance_head_if_missing(db: Database, seq: int, digest: str) -> None:
    try:
        db[AUDIT_HEAD].insert_one({"_id": HEAD_ID, "seq": seq, "hash": digest})
    except DuplicateKeyError:
        pass


def ensure_indexes(db: Database) -> None:
    """`at` for retention and reading a period; (subject_type, subject_id) for a person's own
    entries (the data export); the _id index is the chain's order and its uniqueness."""
    db[AUDIT_LOG].create_index([("at", ASCENDING)], name="at")
    db[AUDIT_LOG].create_index([("subject_type", ASCENDING), ("subject_id", ASCENDING)], name="subject")


def records(db: Database, query: Mapping | None = None) -> Iterable[dict]:
    """The chain's records matching `query`, in order (the checkpoint left out)."""
    return db[AUDIT_LOG].find({**(query or {}), "_id": {"$type": "number"}}).sort("_id", ASCENDING)


# ---------------------------------------------------------------- checking the chain
def verify(db: Database) -> tuple[bool, int | None, int]:
    """Walk the chain from the checkpoint (or the start): (ok, first bad seq or None,
    records checked). A record is bad when its hash is not its content's, its prev_hash is
    not the previous record's hash, or its seq does not follow (one removed)."""
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
    """`prune` batch after batch until nothing is due; how many were removed."""
    removed = 0
    while True:
        done = prune(db, days, now)
        removed += done
        if done < PRUNE_BATCH:
            return removed
