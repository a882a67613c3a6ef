"""Who works at a counter: an officer claims a counter (the counter page does it on sign-in)
and holds it while they work there; only the holder calls, serves, skips, recalls and
transfers at that counter, so a served ticket (and the rating of it) is credited to the
officer who was really there (issue 21).

A second officer claiming an occupied counter is refused (409 counter_taken) unless the
holder is gone — nothing from them for HOLDER_IDLE_SECONDS — or ended their session, or a
ward admin freed the counter. Calling the next ticket at a free counter claims it on the
way, so a console (or an API client) that calls first works as before.

The same record is the counter's call lock: "call next" takes it with one atomic
find-and-modify, looks for a ticket the counter has called and not closed (a double click
gets that ticket back rather than a second one), calls the next only when there is none,
and lets go. Two concurrent requests cannot both hold it, so a counter never calls two
tickets at once. A lock left by a crashed request lapses after CALL_LOCK_SECONDS.

Plain functions `(deps, principal, input...)`; the collection's queries live here, next to
the only code that uses them."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from motcua_common.auth import Principal
from motcua_common.problems import Problem, forbidden

from . import counters, domain

if TYPE_CHECKING:
    from .deps import Deps

SESSIONS = "counter_sessions"
HOLDER_IDLE_SECONDS = 15 * 60   # the counter page renews every minute; this long silent, the officer is gone
CALL_LOCK_SECONDS = 30          # far beyond one call; only a crashed request leaves it this long
# A holder seen this recently may call by reads alone when nobody waits (held_lately); a
# third of HOLDER_IDLE_SECONDS, so a full call still renews last_seen_at long before the
# holder would count as gone.
SEEN_LATELY_SECONDS = HOLDER_IDLE_SECONDS // 3


def _key(ward_id: str, counter_id: str) -> str:
    return f"{ward_id}:{counter_id}"


def _now(deps: "Deps") -> datetime:
    return domain.to_millis(deps.clock.now())


def _record(deps: "Deps", ward_id: str, counter_id: str) -> None:
    """The counter's record, made on first use (two first uses at once: one insert wins)."""
    try:
        deps.db[SESSIONS].update_one(
            {"_id": _key(ward_id, counter_id)},
            {"$setOnInsert": {"ward_id": ward_id, "counter_id": counter_id, "officer_id": None,
                              "last_seen_at": None, "call_lock": None, "call_locked_at": None}},
            upsert=True)
    except DuplicateKeyError:
        pass


def _taken(holder: dict | None) -> Problem:
    name = (holder or {}).get("username") or "khác"
    return Problem(409, "counter_taken", "Quầy đang có cán bộ làm việc",
                   f"Quầy đang do cán bộ {name} làm việc. Chỉ nhận quầy khi cán bộ đó kết thúc phiên, vắng quá "
                   f"{HOLDER_IDLE_SECONDS // 60} phút, hoặc trưởng bộ phận một cửa giải phóng quầy. / "
                   "Another officer holds this counter.",
                   held_by=(holder or {}).get("username"))


def _answer(doc: dict) -> dict:
    return {"counter_id": doc["counter_id"], "officer_id": doc["officer_id"], "username": doc.get("username"),
            "last_seen_at": domain.iso_utc(doc["last_seen_at"]) if doc.get("last_seen_at") else None,
            "idle_timeout_seconds": HOLDER_IDLE_SECONDS}


# ---------------------------------------------------------------- claiming and letting go
def claim(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> dict:
    """The officer takes the counter, or renews holding it; 409 counter_taken while another
    officer holds it and is not gone."""
    counters.require_ward(deps, principal, ward_id)
    _staff_of(principal, ward_id)
    counters.require_counter(deps, ward_id, counter_id)
    return _claim(deps, principal, ward_id, counter_id)


def _claim(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> dict:
    now = _now(deps)
    _record(deps, ward_id, counter_id)
    held = deps.db[SESSIONS].find_one_and_update(
        {"_id": _key(ward_id, counter_id),
         "$or": [{"officer_id": principal.subject}, {"officer_id": None},
                 {"last_seen_at": {"$lt": now - timedelta(seconds=HOLDER_IDLE_SECONDS)}}]},
        {"$set": {"officer_id": principal.subject, "username": principal.username, "last_seen_at": now}},
        return_document=ReturnDocument.AFTER)
    if held is None:
        raise _taken(deps.db[SESSIONS].find_one({"_id": _key(ward_id, counter_id)}))
    return _answer(held)


def release(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> None:
    """The holder ends their session, or a ward admin frees the counter (an officer who went
    home without ending it); anyone else is refused."""
    counters.require_ward(deps, principal, ward_id)
    _staff_of(principal, ward_id)
    guard = {"_id": _key(ward_id, counter_id)}
    if not counters.may_configure(principal, ward_id):
        guard["officer_id"] = principal.subject
    freed = deps.db[SESSIONS].update_one(guard, {"$set": {"officer_id": None, "username": None}})
    if freed.matched_count == 0 and "officer_id" in guard \
            and deps.db[SESSIONS].count_documents({"_id": guard["_id"], "officer_id": {"$ne": None}}):
        raise _not_held()


def holders(deps: "Deps", principal: Principal | None, ward_id: str) -> dict[str, dict]:
    """counter_id -> who holds it now (the admin page), gone holders left out."""
    now = _now(deps)
    found = deps.db[SESSIONS].find({"ward_id": ward_id, "officer_id": {"$ne": None},
                                    "last_seen_at": {"$gte": now - timedelta(seconds=HOLDER_IDLE_SECONDS)}})
    return {d["counter_id"]: _answer(d) for d in found}


def _staff_of(principal: Principal, ward_id: str) -> None:
    if principal is None or not principal.is_staff_of(ward_id):
        raise forbidden("Chỉ cán bộ của phường mới làm việc tại quầy. / Only the ward's staff work at its counters.")


def _not_held() -> Problem:
    return Problem(403, "counter_not_held", "Bạn chưa nhận quầy này",
                   "Chỉ cán bộ đang làm việc tại quầy (đã nhận quầy trên trang quầy) mới gọi và xử lý số ở quầy này. / "
                   "Only the officer holding this counter acts at it.")


def require_holder(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> None:
    """The officer holds the counter (and is seen again now), else 403 counter_not_held."""
    renewed = deps.db[SESSIONS].update_one({"_id": _key(ward_id, counter_id), "officer_id": principal.subject},
                                           {"$set": {"last_seen_at": _now(deps)}})
    if renewed.matched_count == 0:
        raise _not_held()


# ---------------------------------------------------------------- the call lock
def held_lately(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> bool:
    """The officer holds the counter, was seen within SEEN_LATELY_SECONDS and no call runs
    there: one read by _id. "Call next" at an idle counter then answers from reads alone
    (nobody waiting, or the ticket already called) without claiming the counter or taking
    its lock again — most calls of a quiet day, each of which used to cost three writes.
    Anything else (a free counter, another holder, a running call) takes the full path."""
    record = deps.db[SESSIONS].find_one({"_id": _key(ward_id, counter_id)},
                                        {"officer_id": 1, "last_seen_at": 1, "call_lock": 1})
    if not record or record.get("officer_id") != principal.subject or record.get("call_lock"):
        return False
    seen = record.get("last_seen_at")
    return seen is not None and domain.to_millis(seen) >= _now(deps) - timedelta(seconds=SEEN_LATELY_SECONDS)


def hold_for_call(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> str:
    """Claim the counter (a free one is taken on the way) and take its call lock; the lock's
    token, for let_go. 409 call_in_progress while another call at this counter runs."""
    _claim(deps, principal, ward_id, counter_id)
    return lock_for_call(deps, principal, ward_id, counter_id)


def lock_for_call(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> str:
    """Take the call lock of a counter the officer holds (see hold_for_call)."""
    now, token = _now(deps), str(uuid.uuid4())
    locked = deps.db[SESSIONS].find_one_and_update(
        {"_id": _key(ward_id, counter_id), "officer_id": principal.subject,
         "$or": [{"call_lock": None}, {"call_locked_at": {"$lt": now - timedelta(seconds=CALL_LOCK_SECONDS)}}]},
        {"$set": {"call_lock": token, "call_locked_at": now}})
    if locked is None:
        if deps.db[SESSIONS].count_documents({"_id": _key(ward_id, counter_id), "officer_id": principal.subject}):
            raise Problem(409, "call_in_progress", "Đang gọi số",
                          "Quầy đang gọi số, vui lòng chờ giây lát. / A call at this counter is in progress.",
                          headers={"Retry-After": "1"})
        raise _taken(deps.db[SESSIONS].find_one({"_id": _key(ward_id, counter_id)}))
    return token


def let_go(deps: "Deps", ward_id: str, counter_id: str, token: str) -> None:
    deps.db[SESSIONS].update_one({"_id": _key(ward_id, counter_id), "call_lock": token},
                                 {"$set": {"call_lock": None, "call_locked_at": None}})
