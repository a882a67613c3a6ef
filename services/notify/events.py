"""The events notify publishes, built here and nowhere else: NotificationSent and
NotificationFailed (proto/), each stored by store.py in the same write as the change it
reports (motcua_common.outbox.commit). One place, so that what the analytics and the
dossier timeline read cannot drift between the success and the failure path."""
from __future__ import annotations

from motcua_common.events import new_event

from . import domain


def notification_sent(doc: dict, body: domain.SmsBody | None) -> dict:
    """A notification went out: `body` is the SMS as sent (None for an email)."""
    return new_event("NotificationSent", doc["ward_id"], {
        "notification_id": doc["_id"], "ward_id": doc["ward_id"] or "", "channel": doc["channel"],
        "template": doc["template"], "segments": body.segments if body else 0,
    })


def notification_failed(doc: dict, reason: str) -> dict:
    """A notification failed for good, for `reason` (domain's stable codes)."""
    return new_event("NotificationFailed", doc["ward_id"], {
        "notification_id": doc["_id"], "ward_id": doc["ward_id"] or "", "channel": doc["channel"],
        "template": doc["template"], "reason": reason,
    })
