"""The transactional outbox: an event is stored in the service's own database in the same
transaction as the state change it describes, and published later by the relay.

Outbox states: pending -> sent (only after the broker's publisher confirm)."""
from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, TypeVar

from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from .events import exchange_for
from .mongo import in_transaction

T = TypeVar("T")
OUTBOX = "outbox"
IDEMPOTENCY = "idempotency_keys"
# Per ward, the last publication order given (`seq`): the next one is never earlier.
OUTBOX_CLOCK = "outbox_clock"

# Set by http.idempotent() around a request carrying an Idempotency-Key: (database name,
# record id). commit() marks that record "committed" in the same transaction as the change,
# so a retry after a crash between the commit and the stored answer never repeats the change.
current_idempotency_record: ContextVar[tuple[str, str] | None] = ContextVar("idempotency_record", default=None)
SENT_RETENTION_SECONDS = 7 * 24 * 3600


def ensure_outbox_indexes(db: Database) -> None:
    db[OUTBOX].create_index([("status", ASCENDING), ("seq", ASCENDING), ("n", ASCENDING)], name="pending_in_order")
    # Sent events are kept a week for audit and replays, then expire.
    db[OUTBOX].create_index("sent_at", expireAfterSeconds=SENT_RETENTION_SECONDS, name="sent_expiry")


def step_clock(db: Database, ward_id: str, now: datetime, also: Mapping[str, object] | None = None) -> dict:
    """Step the ward's clock (see _next_seq) and return its document after the step, its
    `last` (tz-aware) being the step taken.

    `also`: more fields of the same document to set in the same atomic update, as
    aggregation expressions of an update pipeline (the queue keeps its day numbering of
    the ward there, queue/store.py take_number: the number and the clock step of the
    ticket's TicketIssued come from one command, and in the same order). The caller then
    hands `last` to commit(..., taken={ward_id: last}) instead of a step taken there."""
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    later = [{"$set": {"last": {"$cond": [{"$gt": [now, {"$ifNull": ["$last", None]}]}, now, {"$add": ["$last", 1]}]},
                       **(also or {})}}]
    doc = db[OUTBOX_CLOCK].find_one_and_update({"_id": ward_id}, later, return_document=ReturnDocument.AFTER)
    while doc is None:
        # The ward's first event: its clock is created, then stepped like any other. Not a
        # stepping upsert: two writers racing to create it, the embedded database could apply
        # the loser's step and still answer no document, and a step taken again would skip a
        # number of the caller's counters (`also`); here the loser of the creation just steps.
        try:
            db[OUTBOX_CLOCK].update_one({"_id": ward_id}, {"$setOnInsert": {"created_at": now}}, upsert=True)
        except DuplicateKeyError:
            pass
        doc = db[OUTBOX_CLOCK].find_one_and_update({"_id": ward_id}, later, return_document=ReturnDocument.AFTER)
    if doc["last"].tzinfo is None:  # a client without tz_aware reads naive UTC
        doc["last"] = doc["last"].replace(tzinfo=timezone.utc)
    return doc


def _next_seq(db: Database, ward_id: str, now: datetime) -> datetime:
    """The publication order of a ward's next event: this process's time, unless an earlier
    write of the ward got a later one — then one millisecond after that one.

    Why not the writer's clock alone: two API processes whose clocks are a few seconds
    apart would order a ward's events by whose clock runs ahead, and the relay would
    publish a ticket's TicketCalled before its TicketIssued.

    Why one atomic update outside the change's transaction, after the change's writes:
    read and written inside every transaction, the ward's clock document made every two
    concurrent writes of a ward conflict; with sixteen kiosks of one ward each loser
    retried under pymongo's growing backoff, and tickets came back together after up to
    6 s (bench/RESULTS.md, "the stall"). Taken after the change's own writes, the order
    still follows what matters: an event caused by another (a call after the issue) is
    written after that one committed, so it takes a later seq; two changes of the same
    document conflict on that document, and the one that commits second took its seq after
    the first committed. Events of unrelated changes may leave in either order, as they
    may happen in either. A retried transaction takes a new seq (a gap, never a repeat).
    BSON dates keep milliseconds: the step is one millisecond, and `now` is cut to it.

    A step may also be taken before the change, by step_clock, and handed to commit
    (`taken`): the queue takes a ticket's with its number. The same order holds, see
    queue/store.py take_number."""
    return step_clock(db, ward_id, now)["last"]


def add_events(db: Database, session: ClientSession | None, envelopes: Iterable[dict],
               taken: Mapping[str, datetime] | None = None) -> None:
    """Store envelopes as pending, inside the caller's transaction. `taken`: per ward, a
    step of its clock the caller took already (step_clock) for these events; the others'
    are taken here."""
    now = datetime.now(timezone.utc)
    taken = taken or {}
    docs = [
        {
            "_id": env["event_id"],
            "status": "pending",
            # Publication order: a per-ward sequence that never goes back (_next_seq), then
            # the position in this write. The relay publishes in this order.
            "seq": taken.get(env.get("ward_id") or "") or _next_seq(db, env.get("ward_id") or "", now),
            "n": index,
            "exchange": exchange_for(env["source"]),
            "routing_key": env["type"],
            "envelope": env,
            "created_at": now,
            "attempts": 0,
        }
        for index, env in enumerate(envelopes)
    ]
    if docs:
        db[OUTBOX].insert_many(docs, session=session, ordered=True)


def commit(db: Database, change: Callable[[ClientSession], T],
           events: Callable[[T], Iterable[dict]] | Iterable[dict] = (),
           taken: Mapping[str, datetime] | None = None) -> T:
    """Apply `change(session)` and store its events atomically.

    `events` is a list of envelopes, or a function of change's result returning them
    (so events can carry ids the change produced). `taken`: clock steps taken already
    (step_clock), per ward; a retried transaction keeps them."""

    def work(session: ClientSession) -> T:
        result = change(session)
        envs = events(result) if callable(events) else events
        add_events(db, session, envs, taken)
        marker = current_idempotency_record.get()
        if marker is not None and marker[0] == db.name:
            db[IDEMPOTENCY].update_one({"_id": marker[1], "state": "in_progress"},
                                       {"$set": {"state": "committed"}}, session=session)
        return result

    # Retries are counted by this name (mongo.in_transaction): the change's, not "commit".
    work.__qualname__ = getattr(change, "__qualname__", work.__qualname__)
    return in_transaction(db, work)


def pending_count(db: Database) -> int:
    return db[OUTBOX].count_documents({"status": "pending"})
