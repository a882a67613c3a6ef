"""The dossier database: procedures, dossiers, the citizens projection and lookup counters.

Every write that other services must hear about goes through outbox.commit, so the state
change and its events are stored in one transaction."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Callable

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common.consumer import ensure_processed_index
from motcua_common.events import new_event
from motcua_common.http import ensure_idempotency_index
from motcua_common.mongo import in_transaction
from motcua_common.outbox import commit, ensure_outbox_indexes

from . import domain
from .catalog import Catalog, Procedure

DOSSIERS = "dossiers"
PROCEDURES = "procedures"
CATALOG = "catalog"
CITIZENS = "citizens"
LOOKUP_COUNTERS = "lookup_counters"

RECEIPT_CODE_ATTEMPTS = 5


class ReceiptCodesExhausted(RuntimeError):
    """Several fresh receipt codes in a row were taken: the random part is too short."""


class StaleDossier(Exception):
    """The dossier changed between reading it and writing the action (a concurrent action)."""


def ensure_indexes(db: Database) -> None:
    ensure_outbox_indexes(db)
    ensure_processed_index(db)
    ensure_idempotency_index(db)
    dossiers = db[DOSSIERS]
    dossiers.create_index("receipt_code", unique=True, name="receipt_code_unique")
    dossiers.create_index("receipt_key", unique=True, name="receipt_key_unique")
    dossiers.create_index([("ward_id", ASCENDING), ("status", ASCENDING)], name="ward_status")
    dossiers.create_index([("status", ASCENDING), ("due_date", ASCENDING)], name="status_due")
    dossiers.create_index([("citizen_id", ASCENDING), ("submitted_at", DESCENDING)], name="citizen_recent")
    db[LOOKUP_COUNTERS].create_index("expires_at", expireAfterSeconds=0, name="expiry")


# ---------------------------------------------------------------- the catalog
def install_catalog(db: Database, catalog: Catalog, now: datetime) -> bool:
    """Make `catalog` the current one; True when something changed. Procedures dropped
    from the file stay in the database, inactive: old dossiers still name them."""
    current = db[CATALOG].find_one({"_id": "current"})
    if current is not None and current.get("digest") == catalog.digest:
        return False
    codes = [p.code for p in catalog.procedures]

    def change(session: ClientSession) -> None:
        for procedure in catalog.procedures:
            document = {"_id": procedure.code, **procedure.to_dict(), "active": True}
            db[PROCEDURES].replace_one({"_id": procedure.code}, document, upsert=True, session=session)
        db[PROCEDURES].update_many({"_id": {"$nin": codes}}, {"$set": {"active": False}}, session=session)
        db[CATALOG].replace_one(
            {"_id": "current"},
            {"_id": "current", "version": catalog.version, "digest": catalog.digest, "loaded_at": now},
            upsert=True, session=session,
        )

    in_transaction(db, change)
    return True


def catalog_version(db: Database) -> str | None:
    current = db[CATALOG].find_one({"_id": "current"})
    return current["version"] if current else None


def list_procedures(db: Database) -> list[Procedure]:
    return [Procedure.from_dict(d) for d in db[PROCEDURES].find({"active": True}).sort("_id", ASCENDING)]


def get_procedure(db: Database, code: str) -> Procedure | None:
    document = db[PROCEDURES].find_one({"_id": code, "active": True})
    return Procedure.from_dict(document) if document else None


# ---------------------------------------------------------------- submitting
def submitted_event(dossier: dict) -> dict:
    return new_event("DossierSubmitted", dossier["ward_id"], {
        "dossier_id": dossier["_id"], "receipt_code": dossier["receipt_code"],
        "procedure_code": dossier["procedure_code"], "ward_id": dossier["ward_id"],
        "channel": dossier["channel"], "due_date": dossier["due_date"],
        "citizen_id": dossier["citizen_id"], "chain_id": dossier.get("chain_id") or "",
    })


def insert_dossiers(db: Database, dossiers: list[dict], new_code: Callable[[dict], str]) -> list[dict]:
    """Store a submission (one dossier, or a chain) with a DossierSubmitted per dossier.

    Receipt codes are random: on the rare collision with an existing code (the unique
    index says so) the whole submission is retried with fresh codes."""
    for _ in range(RECEIPT_CODE_ATTEMPTS):
        for dossier in dossiers:
            dossier["receipt_code"] = new_code(dossier)
            dossier["receipt_key"] = domain.receipt_key(dossier["receipt_code"])

        def change(session: ClientSession) -> None:
            for dossier in dossiers:
                db[DOSSIERS].insert_one(dossier, session=session)

        try:
            commit(db, change, lambda _: [submitted_event(d) for d in dossiers])
            return dossiers
        except DuplicateKeyError as exc:
            if "receipt" not in str(exc):
                raise
    raise ReceiptCodesExhausted(f"{RECEIPT_CODE_ATTEMPTS} receipt codes in a row were taken")


# ---------------------------------------------------------------- reading dossiers
def get_dossier(db: Database, dossier_id: str) -> dict | None:
    return db[DOSSIERS].find_one({"_id": dossier_id})


def find_by_receipt_code(db: Database, code: str) -> dict | None:
    key = domain.receipt_key(code)
    return db[DOSSIERS].find_one({"receipt_key": key}) if key else None


def find_dossiers(db: Database, query: dict, limit: int) -> list[dict]:
    return list(db[DOSSIERS].find(query).sort("submitted_at", DESCENDING).limit(limit))


def linked_dossiers(db: Database, chain_id: str, but: str) -> list[dict]:
    return list(db[DOSSIERS].find({"chain_id": chain_id, "_id": {"$ne": but}}).sort("submitted_at", ASCENDING))


# ---------------------------------------------------------------- actions
def _transition_events(dossier: dict, outcome: domain.Outcome, actor_id: str) -> list[dict]:
    common = {
        "dossier_id": dossier["_id"], "ward_id": dossier["ward_id"], "receipt_code": dossier["receipt_code"],
        "citizen_id": dossier["citizen_id"], "procedure_code": dossier["procedure_code"],
    }
    events = [new_event("DossierStatusChanged", dossier["ward_id"], {
        **common, "from_status": outcome.from_status, "to_status": outcome.to_status, "actor_id": actor_id,
    })]
    if outcome.to_status == domain.RESULT_READY:
        events.append(new_event("DossierResultReady", dossier["ward_id"], common))
    return events


def record_outcome(db: Database, dossier: dict, outcome: domain.Outcome, actor_id: str,
                   note: str | None, now: datetime, today: date) -> dict:
    """Write an action's outcome and its events; StaleDossier if the dossier moved meanwhile."""
    entry = {"status": outcome.to_status, "at": now, "actor_id": actor_id, "note": note}
    changes = {
        "status": outcome.to_status,
        "due_date": outcome.due_date.isoformat(),
        "supplement_requested_on": outcome.supplement_requested_on.isoformat() if outcome.supplement_requested_on else None,
        "updated_at": now,
    }
    if outcome.to_status == domain.RETURNED:
        changes.update(returned_on=today.isoformat(), returned_on_time=outcome.returned_on_time)

    def change(session: ClientSession) -> dict:
        updated = db[DOSSIERS].find_one_and_update(
            # Conditional on the status read: of two officers acting at once, one wins.
            {"_id": dossier["_id"], "status": outcome.from_status},
            {"$set": changes, "$push": {"history": entry}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if updated is None:
            raise StaleDossier(dossier["_id"])
        return updated

    return commit(db, change, _transition_events(dossier, outcome, actor_id))


# ---------------------------------------------------------------- numbers
def ward_stats(db: Database, ward_id: str, today: date) -> dict:
    dossiers = db[DOSSIERS]
    ward = {"ward_id": ward_id}
    returned = dossiers.count_documents({**ward, "status": domain.RETURNED})
    returned_on_time = dossiers.count_documents({**ward, "status": domain.RETURNED, "returned_on_time": True})
    return {
        "submitted": dossiers.count_documents(ward),
        "online": dossiers.count_documents({**ward, "channel": "online"}),
        "counter": dossiers.count_documents({**ward, "channel": "counter"}),
        "returned": returned,
        "returned_on_time": returned_on_time,
        "overdue": dossiers.count_documents({**ward, **_overdue(today)}),
        "on_time_rate": domain.on_time_rate(returned, returned_on_time),
    }


def _overdue(today: date) -> dict:
    return {"status": {"$in": list(domain.CLOCK_RUNNING_STATUSES)}, "due_date": {"$lt": today.isoformat()}}


def overdue_by_ward(db: Database, today: date) -> dict[str, int]:
    """Overdue dossiers per ward, 0 for every ward that has dossiers and none overdue."""
    counts = {ward: 0 for ward in db[DOSSIERS].distinct("ward_id")}
    for row in db[DOSSIERS].aggregate([{"$match": _overdue(today)}, {"$group": {"_id": "$ward_id", "n": {"$sum": 1}}}]):
        counts[row["_id"]] = row["n"]
    return counts


# ---------------------------------------------------------------- lookup rate limit
def count_lookup(db: Database, client_key: str, window_start: datetime, window: timedelta) -> int:
    """Count one lookup by `client_key` in the fixed window starting at `window_start` and
    return the window's total. Kept in the database so every API process shares it."""
    counter_id = f"{client_key}:{int(window_start.timestamp())}"
    try:
        # Insert first, then $inc without upsert: atomic and exact under concurrency on
        # MongoDB and on the embedded server alike (an upserting $inc is not).
        db[LOOKUP_COUNTERS].insert_one({"_id": counter_id, "hits": 0, "expires_at": window_start + 2 * window})
    except DuplicateKeyError:
        pass
    counter = db[LOOKUP_COUNTERS].find_one_and_update(
        {"_id": counter_id}, {"$inc": {"hits": 1}}, return_document=ReturnDocument.AFTER
    )
    return counter["hits"] if counter else 1


# ---------------------------------------------------------------- citizens projection
def record_citizen(db: Database, session: ClientSession, citizen: dict) -> None:
    """Keep what the adoption figures need about a registered citizen: no name, no number."""
    db[CITIZENS].update_one(
        {"_id": citizen["citizen_id"]}, {"$set": citizen}, upsert=True, session=session
    )
