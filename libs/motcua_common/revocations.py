"""Sessions ended before their tokens expire: an officer deactivated, moved or re-roled, a
citizen whose phone or ward an officer corrected. identity records `revoked_before` for the
account and emits SessionsRevoked; every other service keeps the same record in its own
database (its worker consumes the event), and refuses any token of that account issued
before that moment (401 `token_revoked`).

Why events and not a call to identity per request: a service keeps answering while identity
is down, and a ward office keeps the list through a WAN outage (what it cannot learn while
cut off is said in README "Ward offices"). How fast: the event's trip (well under a second
on a healthy broker) plus CACHE_SECONDS of the per-process cache — within the contract's
60 seconds with room for a broker hiccup."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from pymongo.database import Database

COLLECTION = "revoked_sessions"
CACHE_SECONDS = 5.0


def record(db: Database, account_id: str, revoked_before: datetime, reason: str, ward_id: str = "",
           session=None) -> None:
    """Keep the latest moment for the account (an older revocation arriving late changes
    nothing: the record only moves forward)."""
    if revoked_before.tzinfo is None:
        revoked_before = revoked_before.replace(tzinfo=timezone.utc)
    db[COLLECTION].update_one({"_id": account_id}, {"$setOnInsert": {"revoked_before": revoked_before}},
                              upsert=True, session=session)
    db[COLLECTION].update_one({"_id": account_id, "revoked_before": {"$lt": revoked_before}},
                              {"$set": {"revoked_before": revoked_before}}, session=session)
    db[COLLECTION].update_one({"_id": account_id}, {"$set": {"reason": reason, "ward_id": ward_id}}, session=session)


def record_event(db: Database, payload: dict, session=None, received_at: datetime | None = None) -> None:
    """SessionsRevoked's payload, as a consumer receives it. The revocation counts from
    when it reached this service at the latest: a ward office cut off from the centre may
    have signed tokens for that account after the revocation, not knowing of it (its
    office tokens); those are refused too once the event arrives."""
    revoked_before = datetime.fromisoformat(payload["revoked_before"].replace("Z", "+00:00"))
    if revoked_before.tzinfo is None:
        revoked_before = revoked_before.replace(tzinfo=timezone.utc)
    revoked_before = max(revoked_before, received_at or datetime.now(timezone.utc))
    record(db, payload["account_id"], revoked_before, payload.get("reason", ""), payload.get("ward_id", ""),
           session=session)


def on_sessions_revoked(db: Database, consumer: str, event) -> str:
    """The SessionsRevoked handler every service's worker calls (idempotent)."""
    from .consumer import handle_once

    return handle_once(db, consumer, event, lambda session: record_event(db, event.payload, session=session))


class RevocationList:
    """Is a token still good? One read by `_id` per account every CACHE_SECONDS."""

    def __init__(self, db: Database, cache_seconds: float = CACHE_SECONDS, clock=time.monotonic):
        self.db, self.cache_seconds, self.clock = db, cache_seconds, clock
        self._cache: dict[str, tuple[float, datetime | None]] = {}
        self._lock = threading.Lock()

    def revoked_before(self, account_id: str) -> datetime | None:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(account_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        doc = self.db[COLLECTION].find_one({"_id": account_id}, {"revoked_before": 1})
        moment = doc["revoked_before"] if doc else None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        with self._lock:
            if len(self._cache) > 50_000:  # a bound: accounts seen, not accounts revoked
                self._cache.clear()
            self._cache[account_id] = (now, moment)
        return moment

    def forget(self, account_id: str) -> None:
        """Drop the cached answer for an account (the service that just revoked it
        refuses its tokens at once, not after CACHE_SECONDS)."""
        with self._lock:
            self._cache.pop(account_id, None)

    def is_revoked(self, account_id: str, issued_at: int | float | None) -> bool:
        moment = self.revoked_before(account_id)
        if moment is None:
            return False
        if issued_at is None:
            return True
        # JWT iat is whole seconds: a token issued in the same second as the revocation
        # is refused too (it may have been issued just before it).
        return issued_at <= moment.timestamp()
