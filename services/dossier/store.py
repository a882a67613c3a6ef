"""The dossier database: procedures, dossiers, results, attachments, payments and the
citizens projection — pymongo reads and writes only.

Every write that other services must hear about goes through outbox.commit, so the state
change and its events are stored in one transaction; the events themselves are built by
the use cases (events.py) and handed in. The public lookup's counters are the shared
rate limiter's (motcua_common.ratelimit)."""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Callable

import gridfs
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common import audit as audit_log
from motcua_common.mongo import in_transaction, update_and_read
from motcua_common.indexes import ensure_plumbing_indexes
from motcua_common.outbox import commit

from . import domain, payments
from .catalog import Catalog, Procedure
from .working_days import CalendarException

DOSSIERS = "dossiers"
PROCEDURES = "procedures"
CATALOG = "catalog"
CITIZENS = "citizens"
CALENDAR_EXCEPTIONS = "calendar_exceptions"  # administrators' extra days off and working Saturdays
PROCEDURE_REVISIONS = "procedure_revisions"  # who changed the catalog, when, to what
RESULTS_BUCKET = "results"  # GridFS: the signed result PDFs
ATTACHMENTS_BUCKET = "attachments"  # GridFS: the papers citizens and officers attach
PAYMENTS = "payments"  # attempts to pay a level-4 fee, one per checkout at the provider
PAYMENT_NOTICES = "payment_notices"  # ids of the provider notices already applied (replays)
WARDS = "wards"  # the wards identity opened (WardOpened), as this service knows them
WARD_PROCEDURES = "ward_procedures"  # which procedures each ward takes online, since when
COUNTER_RECORDS = "counter_records"  # citizens filed for at the counter without an account (personal data)

RECEIPT_CODE_ATTEMPTS = 5


class ReceiptCodesExhausted(RuntimeError):
    """Several fresh receipt codes in a row were taken: the random part is too short."""


class StaleDossier(Exception):
    """The dossier changed between reading it and writing the action (a concurrent action)."""


def ensure_indexes(db: Database) -> None:
    ensure_plumbing_indexes(db)
    dossiers = db[DOSSIERS]
    dossiers.create_index("receipt_code", unique=True, name="receipt_code_unique")
    dossiers.create_index("receipt_key", unique=True, name="receipt_key_unique")
    dossiers.create_index([("ward_id", ASCENDING), ("status", ASCENDING)], name="ward_status")
    dossiers.create_index([("status", ASCENDING), ("due_date", ASCENDING)], name="status_due")
    dossiers.create_index([("citizen_id", ASCENDING), ("submitted_at", DESCENDING)], name="citizen_recent")
    dossiers.create_index("result.sha256", name="result_digest", sparse=True)
    # The token printed on a result (its public verification address): one result each.
    dossiers.create_index("result.verify_token", unique=True, name="result_verify_token",
                          partialFilterExpression={"result.verify_token": {"$type": "string"}})
    # The ward's numbers over a range of days: received, and returned, in the range.
    dossiers.create_index([("ward_id", ASCENDING), ("received_on", ASCENDING)], name="ward_received")
    dossiers.create_index([("ward_id", ASCENDING), ("returned_on", ASCENDING)], name="ward_returned", sparse=True)
    db[PROCEDURE_REVISIONS].create_index([("code", ASCENDING), ("at", ASCENDING)], name="code_at")
    db[PAYMENTS].create_index([("dossier_id", ASCENDING), ("created_at", DESCENDING)], name="dossier_recent")
    # A notice older than the tolerance is refused anyway: its id need not be kept longer.
    db[PAYMENT_NOTICES].create_index("expires_at", expireAfterSeconds=0, name="expiry")
    db[WARD_PROCEDURES].create_index([("ward_id", ASCENDING), ("code", ASCENDING)], unique=True, name="ward_code")
    # The officer's desk: a ward's tabs by status and due date, «của tôi», search by name,
    # by citizen and by counter record; counter records by national id (one per person).
    dossiers.create_index([("ward_id", ASCENDING), ("status", ASCENDING), ("due_date", ASCENDING)],
                          name="ward_status_due")
    dossiers.create_index([("ward_id", ASCENDING), ("assignee_id", ASCENDING), ("status", ASCENDING)],
                          name="ward_assignee_status")
    dossiers.create_index([("ward_id", ASCENDING), ("citizen_name_key", ASCENDING)], name="ward_citizen_name")
    dossiers.create_index([("ward_id", ASCENDING), ("citizen_id", ASCENDING)], name="ward_citizen")
    dossiers.create_index("counter_record_id", name="counter_record", sparse=True)
    db[COUNTER_RECORDS].create_index("national_id", unique=True, name="national_id_unique")
    # The hash-chained audit log of officers' actions and reads (motcua_common.audit).
    audit_log.ensure_indexes(db)


# ---------------------------------------------------------------- the catalog
def install_catalog(db: Database, catalog: Catalog, now: datetime) -> bool:
    """Make `catalog` (the shipped file) the current one; True when something changed.

    Procedures dropped from the file stay in the database, inactive: old dossiers still
    name them. A procedure an administrator created or edited is the ward's own decision
    and stays as the administrator left it when a newer file arrives."""
    current = db[CATALOG].find_one({"_id": "current"})
    if current is not None and current.get("digest") == catalog.digest:
        return False
    codes = [p.code for p in catalog.procedures]
    edited = {d["_id"] for d in db[PROCEDURES].find({"source": "admin"}, {"_id": 1})}

    def change(session: ClientSession) -> None:
        for procedure in catalog.procedures:
            if procedure.code in edited:
                continue
            document = {"_id": procedure.code, **procedure.to_dict(), "catalog_version": catalog.version,
                        "active": True, "source": "file"}
            db[PROCEDURES].replace_one({"_id": procedure.code}, document, upsert=True, session=session)
        db[PROCEDURES].update_many({"_id": {"$nin": codes}, "source": {"$ne": "admin"}}, {"$set": {"active": False}},
                                   session=session)
        db[CATALOG].replace_one(
            {"_id": "current"},
            {"_id": "current", "version": catalog.version, "file_version": catalog.version, "revision": 0,
             "digest": catalog.digest, "loaded_at": now},
            upsert=True, session=session,
        )

    in_transaction(db, change)
    return True


class ProcedureExists(Exception):
    pass


class NoSuchProcedure(Exception):
    pass


def save_procedure(db: Database, data: dict, actor_id: str, now: datetime, create: bool) -> Procedure:
    """An administrator's new or changed procedure (already validated), under a new
    catalog version: dossiers submitted from now on carry it, older ones keep theirs."""

    def change(session: ClientSession) -> Procedure:
        existing = db[PROCEDURES].find_one({"_id": data["code"]}, session=session)
        if create and existing is not None and existing.get("active", True):
            raise ProcedureExists(data["code"])
        if not create and (existing is None or not existing.get("active", True)):
            raise NoSuchProcedure(data["code"])
        version = _bump_catalog_version(db, session, now)
        procedure = Procedure.from_dict({**data, "catalog_version": version})
        document = {"_id": procedure.code, **procedure.to_dict(), "active": True, "source": "admin",
                    "updated_at": now, "updated_by": actor_id}
        db[PROCEDURES].replace_one({"_id": procedure.code}, document, upsert=True, session=session)
        _record_revision(db, session, procedure.code, version, "create" if create else "update", actor_id, now,
                         procedure.to_dict())
        return procedure

    return in_transaction(db, change)


def withdraw_procedure(db: Database, code: str, actor_id: str, now: datetime) -> str:
    """Stop accepting dossiers for `code` (it stays readable for the dossiers that name it)."""

    def change(session: ClientSession) -> str:
        existing = db[PROCEDURES].find_one({"_id": code, "active": True}, session=session)
        if existing is None:
            raise NoSuchProcedure(code)
        version = _bump_catalog_version(db, session, now)
        db[PROCEDURES].update_one({"_id": code}, {"$set": {"active": False, "source": "admin", "updated_at": now,
                                                          "updated_by": actor_id}}, session=session)
        # A chain naming the withdrawn procedure would silently lose a link: drop it.
        db[PROCEDURES].update_many({"next_procedures": code}, {"$pull": {"next_procedures": code}}, session=session)
        _record_revision(db, session, code, version, "withdraw", actor_id, now, None)
        return version

    return in_transaction(db, change)


def _bump_catalog_version(db: Database, session: ClientSession, now: datetime) -> str:
    current = db[CATALOG].find_one_and_update(
        {"_id": "current"}, {"$inc": {"revision": 1}, "$set": {"edited_at": now}},
        return_document=ReturnDocument.AFTER, session=session,
    )
    if current is None:
        raise RuntimeError("the catalog was never installed (run prepare first)")
    version = f"{current.get('file_version', current['version'])}+{current['revision']}"
    db[CATALOG].update_one({"_id": "current"}, {"$set": {"version": version}}, session=session)
    return version


def _record_revision(db: Database, session: ClientSession, code: str, version: str, change: str, actor_id: str,
                     now: datetime, procedure: dict | None) -> None:
    db[PROCEDURE_REVISIONS].insert_one({"code": code, "catalog_version": version, "change": change,
                                        "actor_id": actor_id, "at": now, "procedure": procedure}, session=session)


def procedure_revisions(db: Database, code: str) -> list[dict]:
    return list(db[PROCEDURE_REVISIONS].find({"code": code}, {"_id": 0}).sort("at", ASCENDING))


def active_procedure_codes(db: Database) -> set[str]:
    return {d["_id"] for d in db[PROCEDURES].find({"active": True}, {"_id": 1})}


def catalog_version(db: Database) -> str | None:
    current = db[CATALOG].find_one({"_id": "current"})
    return current["version"] if current else None


def list_procedures(db: Database) -> list[Procedure]:
    return [Procedure.from_dict(d) for d in db[PROCEDURES].find({"active": True}).sort("_id", ASCENDING)]


def get_procedure(db: Database, code: str, active_only: bool = True) -> Procedure | None:
    query = {"_id": code, "active": True} if active_only else {"_id": code}
    document = db[PROCEDURES].find_one(query)
    return Procedure.from_dict(document) if document else None


# ---------------------------------------------------------------- calendar exceptions
def calendar_exceptions(db: Database, year: int | None = None) -> list[CalendarException]:
    query = {"_id": {"$gte": f"{year:04d}-01-01", "$lte": f"{year:04d}-12-31"}} if year else {}
    return [CalendarException(date.fromisoformat(d["_id"]), d["kind"], d["reason"])
            for d in db[CALENDAR_EXCEPTIONS].find(query).sort("_id", ASCENDING)]


def save_calendar_exception(db: Database, exception: CalendarException, actor_id: str, now: datetime) -> None:
    db[CALENDAR_EXCEPTIONS].replace_one(
        {"_id": exception.day.isoformat()},
        {"_id": exception.day.isoformat(), "kind": exception.kind, "reason": exception.reason,
         "updated_by": actor_id, "updated_at": now},
        upsert=True,
    )


def delete_calendar_exception(db: Database, day: date) -> bool:
    return db[CALENDAR_EXCEPTIONS].delete_one({"_id": day.isoformat()}).deleted_count == 1


# ---------------------------------------------------------------- submitting
def insert_dossiers(db: Database, dossiers: list[dict], new_code: Callable[[dict], str],
                    events: Callable[[dict], dict]) -> list[dict]:
    """Store a submission (one dossier, or a chain) with `events(dossier)` for each dossier.

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
            commit(db, change, lambda _: [events(d) for d in dossiers])
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
def record_outcome(db: Database, dossier: dict, outcome: domain.Outcome, actor_id: str,
                   note: str | None, now: datetime, today: date, events: list[dict],
                   result_pdf: bytes | None = None, event_id: str | None = None,
                   result_token: str | None = None, collected: dict | None = None,
                   audit_entry: dict | None = None) -> dict:
    """Write an action's outcome and its `events` (and `audit_entry`, in the same
    transaction); StaleDossier if the dossier moved meanwhile.

    `result_pdf` (the signed result of an approval) is stored first, then the dossier
    names it in the same write as the status change: a dossier is never result_ready
    without its result. GridFS cannot write inside a transaction, so should the process
    die between the two writes, an unreferenced file remains (never a missing result)."""
    entry = {"status": outcome.to_status, "at": now, "actor_id": actor_id, "note": note, "event_id": event_id}
    changes = {
        "status": outcome.to_status,
        "due_date": outcome.due_date.isoformat(),
        "supplement_requested_on": outcome.supplement_requested_on.isoformat() if outcome.supplement_requested_on else None,
        "updated_at": now,
    }
    if outcome.to_status == domain.RETURNED:
        changes.update(returned_on=today.isoformat(), returned_on_time=outcome.returned_on_time)
    if collected is not None:  # who collected the result, and when (return)
        entry["collected"] = changes["collected"] = collected
    if result_pdf is not None:
        changes["result"] = _store_result(db, dossier, result_pdf, now, result_token)

    def change(session: ClientSession) -> dict:
        updated = update_and_read(
            db[DOSSIERS],
            # Conditional on the status read: of two officers acting at once, one wins.
            {"_id": dossier["_id"], "status": outcome.from_status},
            {"$set": changes, "$push": {"history": entry}},
            session,
        )
        if updated is None:
            raise StaleDossier(dossier["_id"])
        if audit_entry is not None:
            audit_log.append(db, audit_entry, session=session)
        return updated

    try:
        return commit(db, change, events)
    except Exception:
        if result_pdf is not None:
            _results(db).delete(changes["result"]["file_id"])
        raise


# ---------------------------------------------------------------- signed results
def _results(db: Database) -> gridfs.GridFSBucket:
    return gridfs.GridFSBucket(db, bucket_name=RESULTS_BUCKET)


def _store_result(db: Database, dossier: dict, pdf: bytes, now: datetime, token: str | None = None) -> dict:
    file_id = _results(db).upload_from_stream(
        f"{dossier['receipt_code']}.pdf", pdf, metadata={"dossier_id": dossier["_id"], "content_type": "application/pdf"},
    )
    stored = {"file_id": file_id, "sha256": hashlib.sha256(pdf).hexdigest(), "size": len(pdf), "signed_at": now}
    if token:
        stored["verify_token"] = token
    return stored


def find_by_result_token(db: Database, token: str) -> dict | None:
    """The dossier whose signed result carries verification token `token`, lean."""
    return db[DOSSIERS].find_one({"result.verify_token": token},
                                 {"receipt_code": 1, "procedure_code": 1, "procedure_name": 1, "ward_id": 1,
                                  "result": 1, "status": 1})


def read_result(db: Database, dossier: dict) -> bytes | None:
    result = dossier.get("result")
    if not result:
        return None
    try:
        return _results(db).open_download_stream(result["file_id"]).read()
    except gridfs.errors.NoFile:
        return None


def is_issued_result(db: Database, pdf: bytes) -> bool:
    """Is `pdf`, byte for byte, a result this platform issued?"""
    return db[DOSSIERS].count_documents({"result.sha256": hashlib.sha256(pdf).hexdigest()}, limit=1) > 0


# ---------------------------------------------------------------- attachments
def _attachments(db: Database) -> gridfs.GridFSBucket:
    return gridfs.GridFSBucket(db, bucket_name=ATTACHMENTS_BUCKET)


def add_attachment(db: Database, dossier: dict, content: bytes, entry: dict, open_statuses: tuple[str, ...],
                   max_files: int) -> dict | None:
    """Store the file, then name it on the dossier — only while the dossier is in one of
    `open_statuses` and has fewer than `max_files` (one conditional write, so two uploads
    at once cannot pass the limit). None, and the file removed, when the dossier refused it.

    GridFS cannot write inside a transaction: should the process die between the two
    writes, an unreferenced file remains, never a dossier naming a missing file."""
    _attachments(db).upload_from_stream_with_id(
        entry["attachment_id"], entry["filename"], content,
        metadata={"dossier_id": dossier["_id"], "content_type": entry["content_type"]},
    )
    try:
        # update_one, not findAndModify: see motcua_common.mongo.update_and_read.
        named = db[DOSSIERS].update_one(
            {"_id": dossier["_id"], "status": {"$in": list(open_statuses)},
             f"attachments.{max_files - 1}": {"$exists": False}},
            {"$push": {"attachments": entry}},
        ).matched_count
    except Exception:
        _attachments(db).delete(entry["attachment_id"])
        raise
    if not named:
        _attachments(db).delete(entry["attachment_id"])
        return None
    # Read only once the file is named: a failure here must not remove a file the dossier lists.
    return db[DOSSIERS].find_one({"_id": dossier["_id"]})


def open_attachment(db: Database, attachment_id: str):
    """A readable GridFS file (stream it; `.length` is its size), or None."""
    try:
        return _attachments(db).open_download_stream(attachment_id)
    except gridfs.errors.NoFile:
        return None


def append_audit(db: Database, entry: dict) -> dict:
    """One record on the audit chain, on its own (a read, a download, an upload)."""
    return audit_log.append(db, entry)


PURGED_FILENAME = "(đã xoá hết thời hạn lưu trữ)"


def prune_closed_attachments(db: Database, closed_before: datetime, now: datetime, limit: int = 500) -> int:
    """Retention of scanned papers: the files of dossiers finished (returned or rejected)
    before `closed_before` are removed from GridFS; the dossier keeps each paper's entry
    (its id, type, size, digest, which paper, when) with the file name blanked, and
    `attachments_purged_at`. At most `limit` dossiers a call; how many were purged."""
    due = db[DOSSIERS].find({"status": {"$in": list(domain.FINISHED_STATUSES)}, "updated_at": {"$lt": closed_before},
                             "attachments.0": {"$exists": True}, "attachments_purged_at": {"$exists": False}},
                            {"attachments": 1, "ward_id": 1}).limit(limit)
    purged = 0
    for dossier in due:
        for entry in dossier["attachments"]:
            try:
                _attachments(db).delete(entry["attachment_id"])
            except gridfs.errors.NoFile:
                pass
        kept = [{**entry, "filename": PURGED_FILENAME, "purged_at": now} for entry in dossier["attachments"]]
        record = audit_log.entry(action="purge_attachments", actor_id="service:dossier", actor_role="system",
                                 subject_type="dossier", subject_id=dossier["_id"], ward_id=dossier.get("ward_id"),
                                 at=now, details={"attachment_ids": [e["attachment_id"] for e in kept],
                                                  "reason": "retention"})

        def change(session: ClientSession, dossier=dossier, kept=kept, record=record) -> bool:
            done = db[DOSSIERS].update_one({"_id": dossier["_id"], "attachments_purged_at": {"$exists": False}},
                                           {"$set": {"attachments": kept, "attachments_purged_at": now}},
                                           session=session).modified_count == 1
            if done:
                audit_log.append(db, record, session=session)
            return done

        purged += in_transaction(db, change)
    return purged


# ---------------------------------------------------------------- payments
def pending_payment(db: Database, dossier_id: str, now: datetime) -> dict | None:
    return db[PAYMENTS].find_one({"dossier_id": dossier_id, "status": payments.PENDING, "expires_at": {"$gt": now}},
                                 sort=[("created_at", DESCENDING)])


def insert_payment(db: Database, payment: dict) -> None:
    db[PAYMENTS].insert_one(payment)


def get_payment(db: Database, payment_id: str) -> dict | None:
    return db[PAYMENTS].find_one({"_id": payment_id})


def payments_of(db: Database, dossier_id: str) -> list[dict]:
    return list(db[PAYMENTS].find({"dossier_id": dossier_id}).sort("created_at", ASCENDING))


class NoticeReplayed(Exception):
    """A provider notice whose id was applied before."""


def apply_notice(db: Database, notice, keep_until: datetime, now: datetime) -> tuple[dict, bool]:
    """Apply a trusted provider notice: remember its id (a second arrival is a replay),
    finish the attempt, and mark the dossier paid — one transaction. Returns the attempt
    and whether the dossier became paid by it (False: failed, or paid already)."""

    def change(session: ClientSession) -> tuple[dict, bool]:
        try:
            db[PAYMENT_NOTICES].insert_one({"_id": notice.notice_id, "payment_id": notice.payment_id,
                                            "at": now, "expires_at": keep_until}, session=session)
        except DuplicateKeyError as exc:
            raise NoticeReplayed(notice.notice_id) from exc
        payment = db[PAYMENTS].find_one({"_id": notice.payment_id}, session=session)
        if payment is None or payment["status"] != payments.PENDING:
            return payment, False  # unknown, or finished before: nothing changes
        db[PAYMENTS].update_one({"_id": payment["_id"]}, {"$set": {
            "status": notice.status, "finished_at": now, "provider_ref": notice.provider_ref}}, session=session)
        payment = {**payment, "status": notice.status, "finished_at": now}
        if notice.status != payments.SUCCEEDED:
            return payment, False
        marked = db[DOSSIERS].update_one(
            {"_id": payment["dossier_id"], "payment_status": payments.UNPAID},
            {"$set": {"payment_status": payments.PAID, "payment": {"method": payments.ONLINE, "payment_id": payment["_id"],
                                                            "amount": payment["amount"], "paid_at": now}}},
            session=session,
        )
        if marked.modified_count == 0:
            # Paid already (another attempt, or cash at the counter): money to give back.
            db[PAYMENTS].update_one({"_id": payment["_id"]}, {"$set": {"refund_due": True}}, session=session)
            return {**payment, "refund_due": True}, False
        return payment, True

    return in_transaction(db, change)


def record_counter_payment(db: Database, dossier: dict, officer_id: str, now: datetime) -> dict | None:
    """The fee taken in cash at the counter; None when the dossier was paid meanwhile."""
    return update_and_read(
        db[DOSSIERS],
        {"_id": dossier["_id"], "payment_status": payments.UNPAID},
        {"$set": {"payment_status": payments.PAID, "payment": {"method": payments.COUNTER, "collected_by": officer_id,
                                                        "amount": dossier["fee"], "paid_at": now}}},
    )


# ---------------------------------------------------------------- assignment
def assign(db: Database, dossier: dict, officer_id: str, actor_id: str, note: str | None, now: datetime,
           audit_entry: dict | None = None) -> dict:
    """Hand the dossier's current step to `officer_id` (with `audit_entry`, in one
    transaction); StaleDossier if its status moved."""
    entry = {"step": dossier["status"], "officer_id": officer_id, "by": actor_id, "at": now, "note": note}

    def change(session: ClientSession | None) -> dict:
        updated = update_and_read(
            db[DOSSIERS],
            {"_id": dossier["_id"], "status": dossier["status"]},
            {"$set": {"assignee_id": officer_id, "updated_at": now}, "$push": {"assignments": entry}},
            session,
        )
        if updated is None:
            raise StaleDossier(dossier["_id"])
        if audit_entry is not None:
            audit_log.append(db, audit_entry, session=session)
        return updated

    return in_transaction(db, change) if audit_entry is not None else change(None)


# ---------------------------------------------------------------- overdue detection
def overdue_dossiers(db: Database, today: date):
    """Every overdue dossier (a cursor, lean fields); the caller keeps those not yet announced."""
    return db[DOSSIERS].find(_overdue(today), {"history": 0, "form": 0, "assignments": 0})


def announce_overdue(db: Database, dossier: dict, now: datetime, event: dict) -> bool:
    """Mark `dossier` announced as overdue for its current due date and store `event`
    (its DossierOverdue), atomically; False when another worker (or a status change) got
    there first."""

    def change(session: ClientSession) -> bool:
        result = db[DOSSIERS].update_one(
            {"_id": dossier["_id"], "status": dossier["status"], "due_date": dossier["due_date"],
             "overdue_noticed_for": {"$ne": dossier["due_date"]}},
            {"$set": {"overdue_noticed_for": dossier["due_date"], "overdue_noticed_at": now}},
            session=session,
        )
        return result.modified_count == 1

    return commit(db, change, lambda marked: [event] if marked else [])


# ---------------------------------------------------------------- numbers
_NUMBERS_FIELDS = {"receipt_code": 1, "procedure_code": 1, "procedure_name": 1, "channel": 1, "status": 1,
                   "received_on": 1, "due_date": 1, "returned_on": 1, "returned_on_time": 1, "assignee_id": 1}


def _days(field: str, first: str | None, last: str) -> dict:
    return {field: {"$gte": first, "$lte": last} if first else {"$lte": last}}


def ward_rows_received(db: Database, ward_id: str, first: str | None, last: str):
    """A ward's dossiers received from `first` (None: ever) to `last` (YYYY-MM-DD, both
    included): lean rows, nothing about the citizen."""
    return db[DOSSIERS].find({"ward_id": ward_id, **_days("received_on", first, last)}, _NUMBERS_FIELDS)


def ward_rows_returned(db: Database, ward_id: str, first: str | None, last: str):
    """A ward's dossiers returned from `first` (None: ever) to `last`: lean rows."""
    return db[DOSSIERS].find({"ward_id": ward_id, "status": domain.RETURNED, **_days("returned_on", first, last)},
                             _NUMBERS_FIELDS)


def _overdue(today: date) -> dict:
    return {"status": {"$in": list(domain.CLOCK_RUNNING_STATUSES)}, "due_date": {"$lt": today.isoformat()}}


def overdue_by_ward(db: Database, today: date) -> dict[str, int]:
    """Overdue dossiers per ward, 0 for every ward that has dossiers and none overdue."""
    counts = {ward: 0 for ward in db[DOSSIERS].distinct("ward_id")}
    for row in db[DOSSIERS].aggregate([{"$match": _overdue(today)}, {"$group": {"_id": "$ward_id", "n": {"$sum": 1}}}]):
        counts[row["_id"]] = row["n"]
    return counts


# ---------------------------------------------------------------- citizens projection
def record_citizen(db: Database, session: ClientSession, citizen: dict) -> None:
    """Keep what the adoption figures need about a registered citizen: no name, no number."""
    db[CITIZENS].update_one(
        {"_id": citizen["citizen_id"]}, {"$set": citizen}, upsert=True, session=session
    )


# ---------------------------------------------------------------- wards and what they take online
def record_ward(db: Database, ward_id: str, fields: dict, now: datetime, session: ClientSession | None = None) -> None:
    """What identity said of a ward when it opened it (WardOpened): set, never removed."""
    db[WARDS].update_one({"_id": ward_id}, {"$set": {**fields, "updated_at": now},
                                            "$setOnInsert": {"opened_at": now}}, upsert=True, session=session)


def get_ward(db: Database, ward_id: str) -> dict | None:
    """{ward_id, name, province, official_code} of a ward this service heard of, or None."""
    doc = db[WARDS].find_one({"_id": ward_id})
    if doc is None:
        return None
    return {"ward_id": doc["_id"], "name": doc.get("name", ""), "province": doc.get("province", ""),
            "official_code": doc.get("official_code", "")}


def ward_procedures(db: Database, ward_id: str) -> dict[str, dict]:
    """code -> {online, online_since, ...} of what the ward has configured."""
    return {d["code"]: d for d in db[WARD_PROCEDURES].find({"ward_id": ward_id})}


def ward_procedure(db: Database, ward_id: str, code: str) -> dict | None:
    return db[WARD_PROCEDURES].find_one({"_id": f"{ward_id}/{code}"})


def set_ward_procedure(db: Database, ward_id: str, code: str, online: bool, since: str | None, actor_id: str,
                       now: datetime) -> dict:
    """Switch online submission of `code` on (since `since`) or off at `ward_id`."""
    key = f"{ward_id}/{code}"
    db[WARD_PROCEDURES].update_one(
        {"_id": key},
        {"$set": {"ward_id": ward_id, "code": code, "online": online, "online_since": since if online else None,
                  "updated_by": actor_id, "updated_at": now}},
        upsert=True,
    )
    return db[WARD_PROCEDURES].find_one({"_id": key})


# ---------------------------------------------------------------- the officer's desk
def count_dossiers(db: Database, query: dict) -> int:
    return db[DOSSIERS].count_documents(query)


def desk_rows(db: Database, query: dict, limit: int) -> list[dict]:
    """A tab of the desk's work list: lean rows, earliest due first."""
    fields = {"history": 0, "form": 0, "assignments": 0, "attachments": 0}
    return list(db[DOSSIERS].find(query, fields).sort([("due_date", ASCENDING), ("submitted_at", ASCENDING)])
                .limit(limit))


DESK_FIELDS = {"receipt_code": 1, "procedure_name": 1, "procedure_code": 1, "citizen_id": 1, "citizen_name": 1,
               "status": 1, "due_date": 1, "assignee_id": 1, "chain_id": 1, "counter_record_id": 1,
               "submitted_at": 1, "ward_id": 1}


def ward_open_rows(db: Database, ward_id: str, statuses: tuple[str, ...]) -> list[dict]:
    """A ward's dossiers in `statuses`, lean (the desk's columns): one equality query per
    status on the ward_status_due index — the embedded database answers those far faster
    than one $in — so the work list counts its tabs and picks its rows from one read."""
    rows: list[dict] = []
    for status in statuses:
        rows.extend(db[DOSSIERS].find({"ward_id": ward_id, "status": status}, DESK_FIELDS))
    return rows


def set_citizen_names(db: Database, names: dict[str, str], keys: dict[str, str]) -> None:
    """Name the dossiers of these citizens that carry no name yet (identity told the names)."""
    for citizen_id, name in names.items():
        if citizen_id:
            db[DOSSIERS].update_many({"citizen_id": citizen_id, "citizen_name": {"$in": [None, ""]}},
                                     {"$set": {"citizen_name": name, "citizen_name_key": keys[citizen_id]}})


# ---------------------------------------------------------------- counter records
def counter_record_by_national_id(db: Database, national_id: str) -> dict | None:
    return db[COUNTER_RECORDS].find_one({"national_id": national_id})


def get_counter_record(db: Database, record_id: str) -> dict | None:
    return db[COUNTER_RECORDS].find_one({"_id": record_id})


def save_counter_record(db: Database, record: dict) -> dict:
    """Keep `record` (a new citizen filed for at the counter); when that national id has a
    record already, it is updated (name, birth date, phone as the officer typed them now)
    and kept under its id. The stored record."""
    changes = {k: record[k] for k in ("full_name", "name_key", "date_of_birth", "phone", "updated_at", "updated_by")}
    first = {k: v for k, v in record.items() if k not in changes and k != "national_id"}
    # update_one then a read (not findAndModify): see motcua_common.mongo.update_and_read.
    try:
        db[COUNTER_RECORDS].update_one({"national_id": record["national_id"]},
                                       {"$set": changes, "$setOnInsert": first}, upsert=True)
    except DuplicateKeyError:  # two officers filing for the same new person at once: theirs stands, ours updates it
        db[COUNTER_RECORDS].update_one({"national_id": record["national_id"]}, {"$set": changes})
    return db[COUNTER_RECORDS].find_one({"national_id": record["national_id"]})


def claim_counter_record(db: Database, record_id: str, citizen_id: str, phone_last4: str | None, now: datetime) -> int:
    """The counter record and its dossiers become `citizen_id`'s (once: a claimed record
    stays claimed); how many dossiers changed hands."""

    def change(session: ClientSession) -> int:
        db[COUNTER_RECORDS].update_one({"_id": record_id, "claimed_by": None},
                                       {"$set": {"claimed_by": citizen_id, "claimed_at": now}}, session=session)
        changes = {"citizen_id": citizen_id, "claimed_at": now}
        if phone_last4:
            changes["phone_last4"] = phone_last4
        return db[DOSSIERS].update_many({"counter_record_id": record_id, "citizen_id": ""}, {"$set": changes},
                                        session=session).modified_count

    return in_transaction(db, change)


def has_unclaimed_counter_records(db: Database) -> bool:
    return db[COUNTER_RECORDS].count_documents({"claimed_by": None}, limit=1) > 0
