"""notify's own database: notifications, groups and broadcasts.

A notification document:
  _id              the notification id (also the gateway's Idempotency-Key)
  source_id, template, recipient
                   what asked for it (event id or broadcast id), which text, and whom
                   (citizen id, or the phone of a group member): unique together, so a
                   redelivered event or a second worker never makes a second SMS
  citizen_id       the citizen to text; the phone is asked of identity at send time and
                   never stored whole (only `to`, masked)
  phone            a group member's number (group members are not citizens' accounts)
  status           pending | sending | sent | failed (domain.STATUSES)
  next_attempt_at  when it may be claimed: the next try, or the end of a sender's lease
  claim            the sender holding it while `sending`
  attempts, first_attempt_at, sent_at, failed_at, reason, last_error
  text, encoding, segments   what went out (never the text of a secret template)
  secret           true for a text carrying a credential (domain.SECRET_TEMPLATES): its
                   params are erased ($unset) the moment it is sent or finally fails
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common import audit
from motcua_common import tracing
from motcua_common.mongo import in_transaction, update_and_read
from motcua_common.outbox import commit

from . import domain, events

NOTIFICATIONS = "notifications"
GROUPS = "groups"
BROADCASTS = "broadcasts"
GATEWAY_PAUSES = "gateway_pauses"   # _id: a gateway's route name; until: when it may be sent to again


def ensure_indexes(db: Database, retention_days: int | None = None) -> None:
    """`retention_days`: how long a notification (masked recipient, template, parameters,
    delivery state) is kept after it was created; MOTCUA_RETENTION_NOTIFICATIONS_DAYS
    (default 365) unless given, 0 for ever. A TTL index: the database removes them."""
    notifications = db[NOTIFICATIONS]
    notifications.create_index([("source_id", ASCENDING), ("template", ASCENDING), ("recipient", ASCENDING)],
                               unique=True, name="one_per_source_template_recipient")
    notifications.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due")
    notifications.create_index([("ward_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)],
                               name="by_ward")
    notifications.create_index([("created_at", DESCENDING)], name="newest_first")
    days = audit.retention_days("notifications") if retention_days is None else retention_days
    audit.ensure_ttl_index(notifications, "created_at", days, "retention")
    db[GROUPS].create_index([("ward_id", ASCENDING), ("created_at", DESCENDING)], name="by_ward")


# A reply's id is derived from the caller's idempotency key, so that the same key can
# never make a second notification, however the calls race.
REPLY_NAMESPACE = uuid.UUID("6d1f0a52-8c55-4d3e-9a57-3f1f6c0de601")


# ---------------------------------------------------------------- notifications
def new_notification(*, template: str, params: dict, ward_id: str, source_id: str, now: datetime,
                     citizen_id: str | None = None, phone: str | None = None, email: str | None = None) -> dict:
    """A pending SMS, to a citizen (by id) or to a group member (by phone); or an email."""
    if email:
        return {**new_notification(template=template, params=params, ward_id=ward_id, source_id=source_id,
                                   now=now, phone=None),
                "channel": domain.CHANNEL_EMAIL, "recipient": email, "email": email,
                "to": domain.mask_email(email)}
    return {
        "_id": str(uuid.uuid4()),
        "channel": domain.CHANNEL_SMS,
        "template": template,
        "params": params,
        "ward_id": ward_id,
        "source_id": source_id,
        "recipient": citizen_id or phone,
        "citizen_id": citizen_id,
        "phone": phone,
        "to": domain.mask_phone(phone),
        "status": domain.PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "sent_at": None,
        "secret": domain.is_secret(template),
        # The span that asked for this message (the consumed event's, a request's): its
        # sending, seconds or hours later, continues that trace (sender.py).
        "traceparent": tracing.current_traceparent(),
        # first_attempt_at is left out on purpose: $min sets it on the first claim.
    }


class ChainRace(Exception):
    """Two events of one chain made its notification at the same moment: run the event's
    transaction again, and it then joins the one that won."""


def gather_chain(db: Database, intent: domain.Intent, ward_id: str, now: datetime, hold_seconds: float,
                 session) -> None:
    """One "submitted" SMS per (chain, citizen): the chain's first event makes it, held for
    `hold_seconds` so that the other linked dossiers' events (published in the same outbox
    write, so arriving right behind) add their receipt codes; then it is sent once.

    Only a notification never tried yet takes a code: an event arriving once the sender
    has claimed it adds nothing (the citizen has that text already)."""
    key = {"source_id": f"chain:{intent.chain_id}", "template": intent.template, "recipient": intent.citizen_id}
    joined = db[NOTIFICATIONS].update_one(
        {**key, "status": domain.PENDING, "attempts": 0},
        {"$addToSet": {"params.receipt_codes": {"$each": intent.params["receipt_codes"]}},
         "$max": {"params.due_date": intent.params["due_date"]}},
        session=session)
    if joined.matched_count or db[NOTIFICATIONS].count_documents(key, limit=1, session=session):
        return
    doc = new_notification(template=intent.template, params=intent.params, ward_id=ward_id,
                           source_id=key["source_id"], citizen_id=intent.citizen_id, now=now)
    doc["next_attempt_at"] = now + timedelta(seconds=hold_seconds)
    try:
        db[NOTIFICATIONS].insert_one(doc, session=session)
    except DuplicateKeyError as exc:
        raise ChainRace(intent.chain_id) from exc


def add_reply(db: Database, reply: domain.Reply, now: datetime) -> str:
    """A reply to a phone (identity's send_sms_reply), once per idempotency key: the id
    of the notification that key made, new or not."""
    doc = new_notification(template=reply.template, params=reply.params, ward_id=reply.ward_id,
                           source_id=f"reply:{reply.key}", phone=reply.to, now=now)
    doc["_id"] = str(uuid.uuid5(REPLY_NAMESPACE, reply.key))
    try:
        db[NOTIFICATIONS].insert_one(doc)
    except DuplicateKeyError:
        pass  # the key was used before: its notification stands, whatever this call asked
    return doc["_id"]


def _erase_secret(doc: dict) -> dict:
    """What a settled notification forgets: a credential has no business in the store
    once it is out (or can no longer go out)."""
    return {"params": "", "text": ""} if doc.get("secret") else {}


def claim_due(db: Database, now: datetime, lease_seconds: float, attempts: int = 5) -> dict | None:
    """Take the most overdue notification for this sender, atomically.

    pending -> sending under a lease: no other sender can take it until the lease ends, and
    if this one dies mid-send the notification is due again when it does. The most overdue
    is read from the "due" index (status, next_attempt_at), one status at a time — an
    equality and a range on it, which every database serves from the index, where an $in
    over both made the embedded one walk all of it, sent notifications included — then taken
    by a compare-and-set on what was read (status and due time): of two senders reading the
    same one, one takes it and the other reads again. Not one findAndModify: see
    motcua_common.mongo.update_and_read."""
    for _ in range(attempts):
        overdue = [db[NOTIFICATIONS].find_one({"status": status, "next_attempt_at": {"$lte": now}},
                                              {"status": 1, "next_attempt_at": 1}, sort=[("next_attempt_at", ASCENDING)])
                   for status in (domain.PENDING, domain.SENDING)]
        candidate = min((c for c in overdue if c is not None), key=lambda c: c["next_attempt_at"], default=None)
        if candidate is None:
            return None
        claim = uuid.uuid4().hex
        taken = update_and_read(
            db[NOTIFICATIONS],
            {"_id": candidate["_id"], "status": candidate["status"], "next_attempt_at": candidate["next_attempt_at"]},
            {
                "$set": {"status": domain.SENDING, "claim": claim,
                         "next_attempt_at": now + timedelta(seconds=lease_seconds)},
                "$inc": {"attempts": 1},
                "$min": {"first_attempt_at": now},
            })
        if taken is not None and taken.get("claim") == claim:  # (read back: still this sender's)
            return taken
    return None  # other senders took every one this sender read: the next tick tries again


def _held(doc: dict) -> dict:
    # Only the sender still holding the claim may settle it: one whose lease ran out while
    # it waited on the gateway must not overwrite the sender that took over.
    return {"_id": doc["_id"], "claim": doc["claim"], "status": domain.SENDING}


def record_sent(db: Database, doc: dict, now: datetime, to_masked: str | None, body: domain.SmsBody | None,
                gateway: str = "", awaits_receipt: bool = False) -> bool:
    """Mark sent and store NotificationSent in the same write. False if the claim was lost.

    `body` is the SMS as sent (None for an email); `awaits_receipt`: the gateway will
    report delivery, and the message is reconciled if it does not."""

    def change(session) -> bool:
        sent = {"status": domain.SENT, "sent_at": now, "to": to_masked, "last_error": None,
                "gateway": gateway, "awaits_receipt": awaits_receipt}
        if body is not None:
            sent.update(encoding=body.encoding, segments=body.segments)
            if not doc.get("secret"):
                sent["text"] = body.text
        result = db[NOTIFICATIONS].update_one(_held(doc), {
            "$set": sent,
            "$unset": {"claim": "", "next_attempt_at": "", **_erase_secret(doc)},
        }, session=session)
        if result.modified_count != 1:
            return False
        # A fast gateway (Kannel beside us) can report delivery before this write: the
        # report waited on the message (record_receipt) and settles it now.
        early = db[NOTIFICATIONS].find_one({"_id": doc["_id"]}, {"early_receipt": 1}, session=session) or {}
        if early.get("early_receipt"):
            db[NOTIFICATIONS].update_one({"_id": doc["_id"], "status": domain.SENT}, {
                "$set": {"status": early["early_receipt"], "receipt_at": now, "awaits_receipt": False},
                "$unset": {"early_receipt": ""},
            }, session=session)
        return True

    return commit(db, change, lambda done: [events.notification_sent(doc, body)] if done else [])


def record_failed(db: Database, doc: dict, now: datetime, reason: str, detail: str = "") -> bool:
    """Mark failed for good and store NotificationFailed in the same write."""

    def change(session) -> bool:
        result = db[NOTIFICATIONS].update_one(_held(doc), {
            "$set": {"status": domain.FAILED, "failed_at": now, "reason": reason, "last_error": detail or None},
            "$unset": {"claim": "", "next_attempt_at": "", **_erase_secret(doc)},
        }, session=session)
        return result.modified_count == 1

    return commit(db, change, lambda done: [events.notification_failed(doc, reason)] if done else [])


def schedule_retry(db: Database, doc: dict, at: datetime, detail: str, pinned_gateway: str | None = None) -> bool:
    """Back to pending until `at`; `pinned_gateway`: the one gateway it may be retried on."""
    result = db[NOTIFICATIONS].update_one(_held(doc), {
        "$set": {"status": domain.PENDING, "next_attempt_at": at, "last_error": detail,
                 "pinned_gateway": pinned_gateway},
        "$unset": {"claim": ""},
    })
    return result.modified_count == 1


def list_notifications(db: Database, ward_id: str | None, status: str | None, limit: int) -> list[dict]:
    query = {}
    if ward_id is not None:
        query["ward_id"] = ward_id
    if status is not None:
        query["status"] = status
    return list(db[NOTIFICATIONS].find(query, {"params": 0, "text": 0, "phone": 0, "citizen_id": 0})
                .sort("created_at", DESCENDING).limit(limit))


# ---------------------------------------------------------------- gateways asking for quiet
def pause_gateway(db: Database, gateway: str, until: datetime) -> None:
    """A gateway answered Retry-After: nothing goes to it before `until`, from any notify
    worker, nor from one started again meanwhile (each reads the pauses, gateway_pauses)."""
    db[GATEWAY_PAUSES].update_one({"_id": gateway}, {"$max": {"until": until}}, upsert=True)


def gateway_pauses(db: Database, now: datetime) -> dict[str, datetime]:
    """The gateways still paused at `now`: route name -> until when."""
    return {doc["_id"]: doc["until"] for doc in db[GATEWAY_PAUSES].find({"until": {"$gt": now}})}


# ---------------------------------------------------------------- groups and broadcasts
def create_group(db: Database, group: domain.Group, created_by: str, now: datetime) -> str:
    group_id = str(uuid.uuid4())
    db[GROUPS].insert_one({"_id": group_id, "name": group.name, "ward_id": group.ward_id,
                           "members": list(group.members), "created_by": created_by, "created_at": now})
    return group_id


def find_group(db: Database, group_id: str) -> dict | None:
    return db[GROUPS].find_one({"_id": group_id})


def list_groups(db: Database, ward_id: str) -> list[dict]:
    return list(db[GROUPS].find({"ward_id": ward_id}).sort("created_at", DESCENDING))


def create_broadcast(db: Database, group: dict, text: str, created_by: str, now: datetime,
                     per_second: float = 0) -> str:
    """The broadcast and one pending message per member (SMS to a phone, email to an
    address), in one write: all of them or none.

    Throttled with `per_second`: the members' messages fall due one after another, so a
    broadcast to a thousand never holds up a citizen's "dossier received" behind it
    (claims take the most overdue first)."""
    broadcast_id = str(uuid.uuid4())
    notifications = []
    for index, member in enumerate(group["members"]):
        due = now + timedelta(seconds=index / per_second) if per_second > 0 else now
        by_email = "@" in member
        notifications.append(new_notification(
            template="broadcast", params={"text": text}, ward_id=group["ward_id"], source_id=broadcast_id,
            phone=None if by_email else member, email=member if by_email else None, now=now))
        notifications[-1]["next_attempt_at"] = due

    def write(session) -> None:
        db[BROADCASTS].insert_one({"_id": broadcast_id, "group_id": group["_id"], "ward_id": group["ward_id"],
                                   "text": text, "recipients": len(notifications),
                                   "created_by": created_by, "created_at": now}, session=session)
        db[NOTIFICATIONS].insert_many(notifications, session=session)

    in_transaction(db, write)
    return broadcast_id


# ---------------------------------------------------------------- delivery receipts
def record_receipt(db: Database, notification_id: str, status: str, now: datetime) -> dict | None:
    """A gateway's delivery receipt on a sent message; the notification after it, or None
    if there is none with that id. A receipt for a message not (yet) sent changes nothing;
    a late receipt overrides the `expired` that reconciliation guessed, since it is what
    really happened."""
    settle = {"$set": {"status": status, "receipt_at": now, "awaits_receipt": False}}
    done = db[NOTIFICATIONS].update_one({"_id": notification_id, "status": {"$in": [domain.SENT, domain.EXPIRED]}},
                                        settle).modified_count
    if not done:
        # Still being recorded as sent (the report beat the sender's write): the sender
        # applies it (record_sent). If the write landed in between, settle it here.
        waiting = db[NOTIFICATIONS].update_one({"_id": notification_id, "status": domain.SENDING},
                                               {"$set": {"early_receipt": status}}).modified_count
        if not waiting:
            db[NOTIFICATIONS].update_one({"_id": notification_id, "status": {"$in": [domain.SENT, domain.EXPIRED]}},
                                         settle)
    return db[NOTIFICATIONS].find_one({"_id": notification_id}, {"params": 0, "text": 0})


def find_notification(db: Database, notification_id: str) -> dict | None:
    return db[NOTIFICATIONS].find_one({"_id": notification_id}, {"params": 0, "text": 0})


def reconcile_unreceipted(db: Database, now: datetime, validity_seconds: float) -> int:
    """Messages a gateway took but never reported on within their validity period: the
    network has given up on them too, so they are `expired`. How many."""
    result = db[NOTIFICATIONS].update_many(
        {"status": domain.SENT, "awaits_receipt": True, "sent_at": {"$lt": now - timedelta(seconds=validity_seconds)}},
        {"$set": {"status": domain.EXPIRED, "reason": "no_receipt", "awaits_receipt": False}},
    )
    return result.modified_count


def broadcast_deliveries(db: Database, broadcast_id: str) -> list[dict]:
    return list(db[NOTIFICATIONS].find({"source_id": broadcast_id}, {"params": 0, "text": 0, "phone": 0, "email": 0})
                .sort("created_at", ASCENDING))


def find_broadcast(db: Database, broadcast_id: str) -> dict | None:
    return db[BROADCASTS].find_one({"_id": broadcast_id})
