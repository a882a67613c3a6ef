"""Counter records (hồ sơ khai hộ): a citizen with no account, filed for at the counter.

The ward's one-stop desk files for whoever comes, account or not (seed 003: «cán bộ sẽ
hướng dẫn hoặc khai hộ»). A citizen identity does not know is kept here, in the dossier
store, as a counter record — full name, national id (CCCD), date of birth and, if they
have one, a phone — one record per national id. Personal data: it never goes into an
event, a log line or an address; the desk's search by CCCD is a form POST.

Their dossiers carry an empty citizen_id (events too: notify texts nobody without an
account, nothing fails) and the last phone digits when a phone was given (the public
lookup and `TT <receipt code>` then work from that phone).

Claiming: when that national id registers, the record and its dossiers become the
citizen's. identity's CitizenRegistered carries no national id (events stay free of
personal data), so the worker asks identity, by RPC, which national id and phone the new
citizen has (`citizen_identity`), and looks that national id up here by its index: one
question per registration, asked only while unclaimed records exist. The officer's desk
claims too, when it finds an account for a national id that still has a record (a
registration missed while the worker was down is caught up then)."""
from __future__ import annotations

import logging
import re
import uuid
from datetime import date

from motcua_common.auth import Principal
from motcua_common.names import fold, normalise_display_name
from motcua_common.phones import normalise_phone

from . import domain, store
from .deps import Deps

log = logging.getLogger(__name__)

_NAME_CHARACTERS = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")


def record_errors(values: dict, today: date) -> tuple[dict, dict[str, str]]:
    """The counter record the officer typed ({full_name, national_id, date_of_birth,
    phone?}), cleaned, and {field: Vietnamese message} for what is wrong."""
    errors: dict[str, str] = {}
    name = normalise_display_name(values.get("full_name"))
    if not name or not 2 <= len(name) <= 100 or not _NAME_CHARACTERS.match(name):
        errors["full_name"] = "Nhập họ và tên của công dân (chữ cái, 2–100 ký tự)."
    national_id = (values.get("national_id") or "").strip()
    if not domain.is_national_id(national_id):
        errors["national_id"] = "Số CCCD phải gồm đúng 12 chữ số."
    born = _date(values.get("date_of_birth"))
    if born is None:
        errors["date_of_birth"] = "Nhập ngày sinh theo dạng ngày/tháng/năm, ví dụ 04/05/1990."
    elif born > today or today.year - born.year > 130:
        errors["date_of_birth"] = "Ngày sinh không hợp lệ."
    raw_phone = (values.get("phone") or "").strip()
    phone = normalise_phone(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        errors["phone"] = "Số điện thoại không hợp lệ (ví dụ 0905 123 456); để trống nếu công dân không có."
    cleaned = {"full_name": name, "national_id": national_id, "date_of_birth": born.isoformat() if born else None,
               "phone": phone}
    return cleaned, errors


def _date(raw) -> date | None:
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    match = re.match(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$", raw)
    try:
        if match:
            day, month, year = (int(x) for x in match.groups())
            return date(year, month, day)
        return date.fromisoformat(raw)
    except ValueError:
        return None


def keep(deps: Deps, principal: Principal, ward_id: str, cleaned: dict) -> dict:
    """Store (or update) the counter record of `cleaned` (already checked); the stored record."""
    now = deps.clock.now()
    record = {
        "_id": str(uuid.uuid4()), "national_id": cleaned["national_id"], "full_name": cleaned["full_name"],
        "name_key": fold(cleaned["full_name"]), "date_of_birth": cleaned["date_of_birth"],
        "phone": cleaned["phone"], "ward_id": ward_id, "created_at": now, "created_by": principal.subject,
        "updated_at": now, "updated_by": principal.subject, "claimed_by": None, "claimed_at": None,
    }
    stored = store.save_counter_record(deps.db, record)
    log.info("counter record kept", extra={"record_id": stored["_id"], "ward_id": ward_id})
    return stored


def phone_last4(record: dict) -> str | None:
    phone = record.get("phone") or ""
    return phone[-4:] if len(phone) >= 4 else None


def of_national_id(deps: Deps, national_id: str) -> dict | None:
    return store.counter_record_by_national_id(deps.db, national_id) if domain.is_national_id(national_id) else None


def claim(deps: Deps, national_id: str, citizen_id: str, phone_last4: str | None) -> int:
    """The unclaimed counter record of `national_id` and its dossiers become the account
    `citizen_id`'s; how many dossiers changed hands (0 when there is nothing to claim)."""
    record = of_national_id(deps, national_id)
    if record is None or record.get("claimed_by") or not citizen_id:
        return 0
    moved = store.claim_counter_record(deps.db, record["_id"], citizen_id, phone_last4, deps.clock.now())
    log.info("counter record claimed", extra={"record_id": record["_id"], "dossiers": moved})
    return moved


def on_registered(deps: Deps, citizen_id: str) -> int:
    """A citizen registered (CitizenRegistered): if a counter record waits for their
    national id, it becomes theirs. Asks identity only while unclaimed records exist;
    rpc.RpcUnavailable propagates (the event is delivered again)."""
    if not citizen_id or not store.has_unclaimed_counter_records(deps.db):
        return 0
    found = deps.citizens.identity_of(citizen_id)
    if not found or not found.get("national_id"):
        return 0
    return claim(deps, found["national_id"], citizen_id, found.get("phone_last4"))


def claim_quietly(deps: Deps, national_id: str, citizen_id: str, phone_last4: str | None) -> int:
    """The desk's catch-up claim: never in the way of filing a dossier."""
    try:
        return claim(deps, national_id, citizen_id, phone_last4)
    except Exception as exc:  # the next registration event or desk visit tries again
        log.warning("counter record not claimed: %s", exc.__class__.__name__)
        return 0

