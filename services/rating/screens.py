"""Rating screens as paired devices: only the screen beside a counter may learn which
ticket was just served there (issue 21: the ticket id is what lets anyone rate, so a
public "latest" would let a stranger rate before the citizen).

Paired the way the queue pairs its kiosks: the ward's admin asks for a one-time pairing
link for one counter (valid PAIRING_CODE_TTL_SECONDS), opens it on the screen, and the
screen keeps a device credential in an HttpOnly cookie on /rating/ for a year; a device
record says whether it is still `active`, so a lost screen is revoked at once.

Why the credential is a random secret kept hashed rather than the kiosks' signed token:
every request checks the device record anyway (revocation), and a signature would need a
second key shared by every rating replica (a Secret the chart does not have) without
adding anything that lookup does not already decide.

Use cases are plain functions `(deps, principal, input...)`; the store functions of the
two collections live here, next to the only code that uses them."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pymongo import ASCENDING
from pymongo.database import Database

from motcua_common.auth import Principal
from motcua_common.problems import Problem, ValidationFailed, field_error, forbidden


if TYPE_CHECKING:
    from .deps import Deps

COOKIE_NAME = "motcua_rating_screen"
CREDENTIAL_MAX_AGE_SECONDS = 366 * 24 * 3600
PAIRING_CODE_TTL_SECONDS = 15 * 60
SCREENS = "rating_screens"
PAIRINGS = "rating_screen_pairings"
COUNTER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")   # the queue's counter ids


@dataclass(frozen=True)
class RatingScreen:
    """A paired, still active rating screen: the ward and counter it stands beside."""
    device_id: str
    ward_id: str
    counter_id: str


def ensure_indexes(db: Database) -> None:
    db[PAIRINGS].create_index("expires_at", expireAfterSeconds=0, name="pairing_expiry")
    db[SCREENS].create_index([("ward_id", ASCENDING), ("paired_at", ASCENDING)], name="by_ward")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _aware(moment: datetime, like: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=like.tzinfo)


# ---------------------------------------------------------------- the screen behind a credential
def screen_of(deps: "Deps", credential: str | None) -> RatingScreen | None:
    """The active screen a credential names; None when it is missing, forged or revoked."""
    if not credential or "." not in credential or len(credential) > 200:
        return None
    device_id, secret = credential.split(".", 1)
    record = deps.db[SCREENS].find_one({"_id": device_id, "status": "active"})
    if record is None or not hmac.compare_digest(record["secret_sha256"], _digest(secret)):
        return None
    return RatingScreen(record["_id"], record["ward_id"], record["counter_id"])


def require_screen_of(screen: RatingScreen | None, ward_id: str, counter_id: str) -> RatingScreen:
    """The paired screen of this very counter, else 401 (no valid credential) or 403
    (a screen paired beside another counter)."""
    if screen is None:
        raise Problem(401, "device_credential_required", "Màn hình chưa được ghép nối",
                      "Chỉ màn hình đánh giá đã ghép nối với quầy này mới xem được lượt vừa phục vụ. / "
                      "Only the rating screen paired with this counter may ask.")
    if screen.ward_id != ward_id or screen.counter_id != counter_id:
        raise Problem(403, "device_not_for_counter", "Màn hình thuộc quầy khác",
                      "Màn hình này được ghép nối với quầy khác. / This screen is paired with another counter.")
    return screen


# ---------------------------------------------------------------- the ward admin
def _ward_admin_of(deps: "Deps", principal: Principal | None, ward_id: str) -> Principal:
    if principal is None or not (principal.role == "admin"
                                 or (principal.role == "ward_admin" and principal.ward_id == ward_id)):
        raise forbidden("Chỉ trưởng bộ phận một cửa của phường mới ghép nối được màn hình đánh giá. / "
                        "Only the ward's admin pairs rating screens.")
    # No "is the ward open here" question: a ward office's rating may not have heard of its
    # own ward yet, and the ward admin's token already names it.
    return principal


def create_pairing(deps: "Deps", principal: Principal | None, ward_id: str, counter_id: str) -> tuple[str, datetime]:
    """A one-time code for the screen beside `counter_id`, and when it expires."""
    _ward_admin_of(deps, principal, ward_id)
    if not isinstance(counter_id, str) or not COUNTER_ID.match(counter_id):
        raise ValidationFailed([field_error("counter_id", "Hãy chọn quầy. / counter_id: a counter of the ward.")])
    now = deps.clock.now()
    expires_at = now + timedelta(seconds=PAIRING_CODE_TTL_SECONDS)
    code = secrets.token_urlsafe(12)
    deps.db[PAIRINGS].insert_one({"_id": code, "ward_id": ward_id, "counter_id": counter_id,
                                  "created_by": principal.subject, "created_at": now, "expires_at": expires_at})
    return code, expires_at


def pair(deps: "Deps", principal: Principal | None, ward_id: str, counter_id: str, code: str) -> str | None:
    """The pairing link opened on the screen: the code (used up, whatever happens) becomes a
    device record, the answer its credential; None for a code unknown, used, expired or
    made for another counter."""
    now = deps.clock.now()
    pairing = deps.db[PAIRINGS].find_one_and_delete({"_id": code})
    if pairing is None or _aware(pairing["expires_at"], now) <= now \
            or (pairing["ward_id"], pairing["counter_id"]) != (ward_id, counter_id):
        return None
    device_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
    deps.db[SCREENS].insert_one({"_id": device_id, "ward_id": ward_id, "counter_id": counter_id, "status": "active",
                                 "secret_sha256": _digest(secret), "paired_by": pairing["created_by"],
                                 "paired_at": now})
    return f"{device_id}.{secret}"


def list_screens(deps: "Deps", principal: Principal | None, ward_id: str) -> list[dict]:
    _ward_admin_of(deps, principal, ward_id)
    return [{"device_id": d["_id"], "counter_id": d["counter_id"], "status": d["status"], "paired_at": d["paired_at"]}
            for d in deps.db[SCREENS].find({"ward_id": ward_id}).sort("paired_at", ASCENDING)]


def revoke(deps: "Deps", principal: Principal | None, ward_id: str, device_id: str) -> None:
    """A lost or replaced screen stops learning tickets at once."""
    _ward_admin_of(deps, principal, ward_id)
    result = deps.db[SCREENS].update_one({"_id": device_id, "ward_id": ward_id},
                                         {"$set": {"status": "revoked", "revoked_at": deps.clock.now()}})
    if result.matched_count == 0:
        raise Problem(404, "screen_not_found", "Không tìm thấy màn hình", "Không có màn hình này. / Unknown screen.")
