"""The ward leader's end-of-day digest of overdue dossiers.

dossier announces each dossier that passes its due date once (DossierOverdue, per dossier
and due date). notify keeps those notices per ward (`overdue_notices`, no personal data:
receipt code, procedure, due date), and at the end of each working day (DIGEST_AT, 17:00
at the ward, Monday to Friday) sends every leader of a ward with new notices one message:
how many dossiers went overdue since the last digest and the first receipt codes. By SMS
to a leader's phone, by e-mail (mail.py, SMTP_URL) to a leader's address; both if both.

Once per ward and day: the digest's id is `<ward_id>/<day>`, inserted with its
notifications and the notices it covers in one transaction; a second worker, or the next
tick, finds the id taken and sends nothing. Each notice is in exactly one digest. A
weekend's or a holiday eve's notices wait for the next digest.

Who the leaders are, and how to reach them, is identity's: `leaders(ward_id)` (the worker
asks identity's `ward_leaders_contacts` RPC) answers [{officer_id, phone?, email?}], or
raises LeadersUnavailable to try again at the next tick. A ward whose leaders left no
phone or address still gets its digest recorded (recipients 0, logged), so that the
notices are not carried over forever.

Plain functions `(deps, principal, input)`; the caller is the platform (principal None)."""
from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Callable

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event
from motcua_common.mongo import in_transaction

from . import domain, store

log = logging.getLogger(__name__)

CONSUMER = "notify"
NOTICES = "overdue_notices"
DIGESTS = "overdue_digests"
TEMPLATE = "overdue_digest"
DIGEST_AT = time(17, 0)          # the ward's local time, at the end of the working day
WORKING_WEEKDAYS = range(0, 5)   # Monday to Friday (notify knows no holidays: see report)
CODES_LISTED = 5                 # the SMS names the first receipt codes, the count says the rest


class LeadersUnavailable(Exception):
    """identity did not answer who the ward's leaders are: try at the next tick."""


LeaderLookup = Callable[[str], "list[dict]"]


def ensure_indexes(db: Database) -> None:
    db[NOTICES].create_index([("digest_id", ASCENDING), ("ward_id", ASCENDING), ("due_date", ASCENDING)],
                             name="undigested_by_ward")


# ---------------------------------------------------------------- consuming DossierOverdue
def record_overdue(deps, principal: Principal | None, event: Event) -> str:
    """Keep one overdue notice (the dossier and the due date it passed); "processed" or
    "duplicate" (a redelivery, or the same dossier and due date announced twice)."""
    payload = event.payload
    ward_id = payload.get("ward_id") or event.ward_id
    if not ward_id or not payload.get("dossier_id") or not payload.get("receipt_code"):
        return "skipped"
    notice = {
        "_id": f"{payload['dossier_id']}/{payload.get('due_date', '')}",
        "ward_id": ward_id, "dossier_id": payload["dossier_id"], "receipt_code": payload["receipt_code"],
        "procedure_code": payload.get("procedure_code", ""), "due_date": payload.get("due_date", ""),
        "noticed_at": deps.clock.now(), "event_id": event.event_id, "digest_id": None,
    }

    def work(session) -> None:
        deps.db[NOTICES].update_one({"_id": notice["_id"]}, {"$setOnInsert": notice}, upsert=True, session=session)

    return handle_once(deps.db, CONSUMER, event, work)


# ---------------------------------------------------------------- the end-of-day digest
def digest_day(now_local: datetime) -> date | None:
    """The working day whose digest is due at `now_local` (the ward's wall clock), or None
    before DIGEST_AT and on days off."""
    if now_local.weekday() not in WORKING_WEEKDAYS or now_local.time() < DIGEST_AT:
        return None
    return now_local.date()


def digest_params(ward_id: str, day: date, notices: list[dict]) -> dict:
    codes = [n["receipt_code"] for n in notices[:CODES_LISTED]]
    listed = ", ".join(codes)
    if len(notices) > CODES_LISTED:
        listed += f" và {len(notices) - CODES_LISTED} hồ sơ khác"
    return {"ward_id": ward_id, "count": str(len(notices)), "day": day.isoformat(), "receipt_codes": listed}


def send_digests(deps, principal: Principal | None, leaders: LeaderLookup) -> int:
    """Make today's digest for every ward with undigested notices, once; how many digests
    were made. Run every minute by the worker; does nothing before DIGEST_AT."""
    now = deps.clock.now()
    day = digest_day(deps.clock.local(now))
    if day is None:
        return 0
    made = 0
    for ward_id in deps.db[NOTICES].distinct("ward_id", {"digest_id": None, "noticed_at": {"$lte": now}}):
        digest_id = f"{ward_id}/{day.isoformat()}"
        if deps.db[DIGESTS].count_documents({"_id": digest_id}, limit=1):
            continue  # today's went out; what was noticed since waits for the next one
        try:
            contacts = leaders(ward_id)
        except LeadersUnavailable as exc:
            log.warning("overdue digest waits: identity did not say who the leaders are: %s", exc,
                        extra={"ward_id": ward_id})
            continue
        made += make_digest(deps, ward_id, day, now, contacts)
    return made


def _recipients(contacts: list[dict]) -> list[dict]:
    """The leaders' phones and addresses, checked and without duplicates."""
    seen, out = set(), []
    for contact in contacts or []:
        phone = domain.normalise_phone(contact.get("phone")) if contact.get("phone") else None
        address = domain.normalise_email(contact.get("email")) if contact.get("email") else None
        for kind, value in (("phone", phone), ("email", address)):
            if value and value not in seen:
                seen.add(value)
                out.append({kind: value})
    return out


def make_digest(deps, ward_id: str, day: date, now: datetime, contacts: list[dict]) -> int:
    """One ward's digest for `day`: 1 when made now, 0 when it was made before."""
    db = deps.db
    digest_id = f"{ward_id}/{day.isoformat()}"
    recipients = _recipients(contacts)

    def change(session) -> int:
        notices = list(db[NOTICES].find({"ward_id": ward_id, "digest_id": None, "noticed_at": {"$lte": now}},
                                        session=session).sort([("due_date", ASCENDING), ("receipt_code", ASCENDING)]))
        if not notices:
            return 0
        params = digest_params(ward_id, day, notices)
        db[DIGESTS].insert_one({"_id": digest_id, "ward_id": ward_id, "day": day.isoformat(), "at": now,
                                "count": len(notices), "receipt_codes": [n["receipt_code"] for n in notices],
                                "recipients": len(recipients)}, session=session)
        db[NOTICES].update_many({"_id": {"$in": [n["_id"] for n in notices]}}, {"$set": {"digest_id": digest_id}},
                                session=session)
        for recipient in recipients:
            db[store.NOTIFICATIONS].insert_one(store.new_notification(
                template=TEMPLATE, params=params, ward_id=ward_id, source_id=digest_id, now=now,
                phone=recipient.get("phone"), email=recipient.get("email")), session=session)
        return 1

    try:
        made = in_transaction(db, change)
    except DuplicateKeyError:
        return 0  # another worker made it first
    if made:
        if recipients:
            log.info("overdue digest made", extra={"ward_id": ward_id, "day": day.isoformat(),
                                                   "recipients": len(recipients)})
        else:
            log.warning("overdue digest has nobody to go to: no leader of the ward has a phone or an e-mail "
                        "address at identity", extra={"ward_id": ward_id, "day": day.isoformat()})
    return made
