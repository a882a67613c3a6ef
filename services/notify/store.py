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
  text, encoding, segments   what went out
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database

from motcua_common.events import new_event
from motcua_common.mongo import in_transaction
from motcua_common.outbox import commit

from . import domain

NOTIFICATIONS = "notifications"
GROUPS = "groups"
BROADCASTS = "broadcasts"


def ensure_indexes(db: Database) -> None:
    notifications = db[NOTIFICATIONS]
    notifications.create_index([("source_id", ASCENDING), ("template", ASCENDING), ("recipient", ASCENDING)],
                               unique=True, name="one_per_source_template_recipient")
    notifications.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due")
    notifications.create_index([("ward_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)],
                               name="by_ward")
    notifications.create_index([("created_at", DESCENDING)], name="newest_first")
    db[GROUPS].create_index([("ward_id", ASCENDING), ("created_at", DESCENDING)], name="by_ward")


# ---------------------------------------------------------------- notifications
def new_notification(*, template: str, params: dict, ward_id: str, source_id: str, now: datetime,
                     citizen_id: str | None = None, phone: str | None = None) -> dict:
    """A pending SMS, to a citizen (by id) or to a group member (by phone)."""
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
        # first_attempt_at is left out on purpose: $min sets it on the first claim.
    }


def claim_due(db: Database, now: datetime, lease_seconds: float) -> dict | None:
    """Take the most overdue notification for this sender, atomically.

    pending -> sending under a lease: no other sender can take it until the lease ends, and
    if this one dies mid-send the notification is due again when it does."""
    return db[NOTIFICATIONS].find_one_and_update(
        {"status": {"$in": [domain.PENDING, domain.SENDING]}, "next_attempt_at": {"$lte": now}},
        {
            "$set": {"status": domain.SENDING, "claim": uuid.uuid4().hex,
                     "next_attempt_at": now + timedelta(seconds=lease_seconds)},
            "$inc": {"attempts": 1},
            "$min": {"first_attempt_at": now},
        },
        sort=[("next_attempt_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )


def _held(doc: dict) -> dict:
    # Only the sender still holding the claim may settle it: one whose lease ran out while
    # it waited on the gateway must not overwrite the sender that took over.
    return {"_id": doc["_id"], "claim": doc["claim"], "status": domain.SENDING}


def record_sent(db: Database, doc: dict, now: datetime, to_masked: str | None, body: domain.SmsBody) -> bool:
    """Mark sent and store NotificationSent in the same write. False if the claim was lost."""

    def change(session) -> bool:
        result = db[NOTIFICATIONS].update_one(_held(doc), {
            "$set": {"status": domain.SENT, "sent_at": now, "to": to_masked, "text": body.text,
                     "encoding": body.encoding, "segments": body.segments, "last_error": None},
            "$unset": {"claim": "", "next_attempt_at": ""},
        }, session=session)
        return result.modified_count == 1

    return commit(db, change, lambda done: [new_event("NotificationSent", doc["ward_id"], {
        "notification_id": doc["_id"], "ward_id": doc["ward_id"], "channel": doc["channel"],
        "template": doc["template"], "segments": body.segments,
    })] if done else [])


def record_failed(db: Database, doc: dict, now: datetime, reason: str, detail: str = "") -> bool:
    """Mark failed for good and store NotificationFailed in the same write."""

    def change(session) -> bool:
        result = db[NOTIFICATIONS].update_one(_held(doc), {
            "$set": {"status": domain.FAILED, "failed_at": now, "reason": reason, "last_error": detail or None},
            "$unset": {"claim": "", "next_attempt_at": ""},
        }, session=session)
        return result.modified_count == 1

    return commit(db, change, lambda done: [new_event("NotificationFailed", doc["ward_id"], {
        "notification_id": doc["_id"], "ward_id": doc["ward_id"], "channel": doc["channel"],
        "template": doc["template"], "reason": reason,
    })] if done else [])


def schedule_retry(db: Database, doc: dict, at: datetime, detail: str) -> bool:
    result = db[NOTIFICATIONS].update_one(_held(doc), {
        "$set": {"status": domain.PENDING, "next_attempt_at": at, "last_error": detail},
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


def create_broadcast(db: Database, group: dict, text: str, created_by: str, now: datetime) -> str:
    """The broadcast and one pending SMS per member, in one write: all of them or none."""
    broadcast_id = str(uuid.uuid4())
    notifications = [
        new_notification(template="broadcast", params={"text": text}, ward_id=group["ward_id"],
                         source_id=broadcast_id, phone=phone, now=now)
        for phone in group["members"]
    ]

    def write(session) -> None:
        db[BROADCASTS].insert_one({"_id": broadcast_id, "group_id": group["_id"], "ward_id": group["ward_id"],
                                   "text": text, "recipients": len(notifications),
                                   "created_by": created_by, "created_at": now}, session=session)
        db[NOTIFICATIONS].insert_many(notifications, session=session)

    in_transaction(db, write)
    return broadcast_id
