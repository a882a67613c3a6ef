"""Fixed-window rate limits kept in MongoDB, so every API process of a service shares them.

Used where strangers can guess: public lookups, inbound SMS per phone, logins."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    hits: int
    retry_after_seconds: int


class FixedWindowLimiter:
    def __init__(self, db: Database, name: str, limit: int, window: timedelta):
        self.collection = db[f"rate_limit_{name}"]
        self.limit, self.window = limit, window

    def ensure_indexes(self) -> None:
        self.collection.create_index("expires_at", expireAfterSeconds=0)

    def hit(self, key: str, now: datetime | None = None) -> Verdict:
        """Count one attempt by `key` (hashed: no raw phone numbers or addresses stored)."""
        now = now or datetime.now(timezone.utc)
        seconds = self.window.total_seconds()
        start = datetime.fromtimestamp(now.timestamp() // seconds * seconds, timezone.utc)
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        counter_id = f"{digest}:{int(start.timestamp())}"
        # Insert first, then $inc without upsert: atomic and distinct on every MongoDB.
        try:
            self.collection.insert_one({"_id": counter_id, "hits": 0, "expires_at": start + 2 * self.window})
        except DuplicateKeyError:
            pass
        doc = self.collection.find_one_and_update({"_id": counter_id}, {"$inc": {"hits": 1}},
                                                  return_document=ReturnDocument.AFTER)
        hits = doc["hits"] if doc else 1
        retry_after = max(1, int((start + self.window - now).total_seconds() + 0.999))
        return Verdict(hits <= self.limit, hits, retry_after)
