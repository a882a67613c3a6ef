"""After a restore: ticket numbers already handed out must never be handed out again.

A backup is a moment; the tickets a ward issued between that moment and the loss of the
database were printed on slips the restored data knows nothing about. So the day the
platform comes back on, every ward's numbering for every service continues past a gap
(RESTORE_GAP numbers) beyond what the backup knew: A017 in a backup taken this morning,
A118 next after the restore; a service the backup had no ticket for today starts at A101.
Only `value` moves — the counts of issued and called tickets that the wait estimates use
stay true. (Numbers are per day, so earlier days need nothing.)"""
from __future__ import annotations

from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from .domain import sequence_key
from .store import SEQUENCES, SERVICES

RESTORE_GAP = 100


def skip_numbers_after_restore(db: Database, today: str, now: datetime, gap: int = RESTORE_GAP) -> list[dict]:
    """Move today's numbering of every ward's every service past `gap` numbers; what moved."""
    moved = []
    for service in db[SERVICES].find({}, {"ward_id": 1, "code": 1}):
        key = sequence_key(service["ward_id"], service["code"], today)
        try:
            db[SEQUENCES].insert_one({"_id": key, "value": 0, "created_at": now})
        except DuplicateKeyError:
            pass
        before = db[SEQUENCES].find_one_and_update({"_id": key}, {"$inc": {"value": gap}, "$set": {"restored_gap": gap}})
        moved.append({"sequence": key, "was": before.get("value", 0), "now": before.get("value", 0) + gap})
    return moved
