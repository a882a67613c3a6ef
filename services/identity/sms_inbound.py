"""What identity does with an SMS sent to the short code (seed 000).

DK registers a citizen and texts back a temporary password valid 72 hours with one
sentence on how to change it; MK changes a password; TT answers a dossier's status to the
phone registered on it; 1, 2 or 3 (DG 1…) answering the result-ready SMS rates the dossier
(rating by SMS: dossier says which one, rating takes it). Every message gets an answer — a malformed one gets the right
form. Replies go out through notify (`send_reply`); the temporary password is handed to
notify as a command and is never logged, stored in clear or put in an event.

The seed's failure — passwords that expired after three days and locked people out — is
answered twice: the reply says how to change the password, and a citizen whose temporary
password expired can still change it by SMS from the phone it was sent to (holding that
phone is the proof), or text DK again for a new one.

`receive(deps, phone, text, message_id)` is the one entry for both gateways (the JSON
inbound and Kannel's get-url): the per-phone limit, then the command."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from motcua_common.names import fold, unaccent
from motcua_common.rpc import RpcUnavailable

from . import accounts, domain, store, units
from .accounts import audit
from .deps import Deps
from .sms_commands import SCORE_WORDS, ChangePassword, NotUnderstood, Rate, Register, Status, parse

log = logging.getLogger(__name__)

STATUS_TEXT = {
    "submitted": "da nop, cho tiep nhan", "received": "da tiep nhan", "processing": "dang xu ly",
    "supplement_requested": "can bo sung giay to", "result_ready": "da co ket qua, moi den nhan",
    "returned": "da tra ket qua", "rejected": "bi tu choi",
}


# A gateway resends a message it got no answer for (a timeout): with the same id, or —
# some gateways give a resend a new id — the same text from the same phone shortly after.
# Either is answered from the first handling: never a second temporary password (the
# first may already be on the phone), never a second SMS.
RESEND_WINDOW = timedelta(minutes=3)


@dataclass(frozen=True)
class Outcome:
    command: str     # DK | MK | TT | DG | unknown
    result: str      # registered | reissued | changed | answered | rated | already_rated | refused | help


@dataclass(frozen=True)
class RateLimited:
    """Over the per-phone limit: nothing was done and nothing is sent back."""
    retry_after: int


def receive(deps: Deps, phone: str, text: str, message_id: object = None,
            gateway: str | None = None) -> Outcome | RateLimited:
    """An inbound message from `phone` (normalised) through `gateway` (None: the JSON
    inbound). The gateway's message id makes a resent message idempotent, and so does the
    same text from the same phone within RESEND_WINDOW: a resend is answered with the
    first handling's outcome and does nothing again (a retried DK keeps the password
    already sent). RpcUnavailable (no reply channel) goes to the caller, which asks the
    gateway to retry: that message was not handled, and its retry is handled afresh."""
    now = deps.clock.now()
    verdict = deps.sms_limiter.hit(phone, now)
    if not verdict.allowed:
        # No reply: a flood must not cost SMS.
        extra = {"phone": domain.mask_phone(phone)}
        if gateway:
            extra["gateway"] = gateway
        log.warning("inbound SMS over the per-phone limit", extra=extra)
        return RateLimited(verdict.retry_after_seconds)
    message_key = str(message_id or f"{text}|{int(now.timestamp() // 60)}")
    if gateway:
        message_key = f"{gateway}:{message_key}"
    key = hashlib.sha256(f"{phone}|{message_key}".encode()).hexdigest()[:32]
    words = unaccent(text).upper().split()
    # MK carries passwords: its text is not kept, even hashed (the id still answers a resend).
    phone_text = key if words[:1] == ["MK"] else hashlib.sha256(f"{phone}|{' '.join(words)}".encode()).hexdigest()[:32]
    first = store.claim_sms(deps.db, key, phone_text, now)
    if first is None:
        first = store.recent_sms(deps.db, phone_text, now - RESEND_WINDOW, but=key)
        if first is not None:
            store.finish_sms(deps.db, key, first["outcome"])
    if first is not None:
        # A resend: the first handling's answer, nothing done and nothing sent again.
        done = first.get("outcome") or {"command": "resend", "result": "in_progress"}
        log.info("inbound SMS resent by the gateway", extra={"command": done["command"]})
        return Outcome(done["command"], done["result"])
    try:
        outcome = handle(deps, phone, text, message_key)
    except BaseException:
        store.release_sms(deps.db, key)   # not handled: the gateway's retry is handled afresh
        raise
    store.finish_sms(deps.db, key, {"command": outcome.command, "result": outcome.result})
    return outcome


def handle(deps: Deps, phone: str, text: str, message_key: str) -> Outcome:
    command = parse(text)
    key = hashlib.sha256(f"{phone}|{message_key}".encode()).hexdigest()[:32]
    if isinstance(command, NotUnderstood):
        _reply(deps, phone, command.reply, None, key)
        return Outcome("unknown", "help")
    if isinstance(command, Register):
        return _register(deps, phone, command, key)
    if isinstance(command, ChangePassword):
        return _change_password(deps, phone, command, key)
    if isinstance(command, Rate):
        return _rate(deps, phone, command, key)
    return _status(deps, phone, command, key)


# ---------------------------------------------------------------- DK
def ward_named(deps: Deps, hint: str | None) -> dict | None:
    """The open ward a DK message names after the date: its official code ("05518",
    "5518"), its ward id ("tn-song-cong"), or its name with or without accents and kind
    ("Song Cong", "phuong song cong") when exactly one open ward carries it; else None."""
    if not hint or not hint.strip():
        return None
    text = fold(hint)
    code = units.official_code(text)
    if code is not None:
        return store.ward_by_official_code(deps.db, code)
    if " " not in text:
        found = store.get_ward(deps.db, text)
        if found is not None:
            return found
    matches = []
    for ward in store.list_wards(deps.db):
        name = fold(ward.get("name") or "")
        if name == text or name.endswith(" " + text) or name.replace(" ", "") == text.replace(" ", "") or (
                name.split(" ", 1)[-1].replace(" ", "") == text.replace(" ", "")):
            matches.append(ward)
    return matches[0] if len(matches) == 1 else None


def _register(deps: Deps, phone: str, command: Register, key: str) -> Outcome:
    today = deps.clock.now().date()
    registration_ward = deps.settings.sms_registration_ward
    named = ward_named(deps, command.ward)
    if named is not None:
        registration_ward = named["ward_id"]
    ward = store.get_ward(deps.db, registration_ward) if registration_ward else None
    problems = domain.check_national_id(command.national_id, command.date_of_birth)
    if command.date_of_birth > today:
        problems.append(domain.FieldError("date_of_birth", "future"))
    name = domain.normalise_name(command.full_name)
    if problems or name is None:
        reason = ("So CCCD khong hop le hoac khong khop nam sinh." if problems
                  else "Ho ten chi gom chu cai va khoang trang.")
        _reply(deps, phone, f"Chua dang ky duoc: {reason} Soan: DK <so CCCD> <ho ten> <ngay/thang/nam sinh>.", None, key)
        return Outcome("DK", "refused")
    password = domain.new_temporary_password()
    existing = store.citizen_by_national_id(deps.db, command.national_id)
    if existing is not None:
        if existing.get("channel") == "sms" and existing.get("phone") == phone and existing.get("must_change_password"):
            # The first reply was lost or the password expired unused: issue a new one.
            store.set_temporary_password(deps.db, existing, password, accounts.temporary_until(deps))
            _send_password(deps, phone, password, existing.get("ward_id"), key,
                           store.get_ward(deps.db, existing["ward_id"]) if existing.get("ward_id") else None)
            audit(deps, "sms_register", account_id=existing["_id"], outcome="reissued")
            return Outcome("DK", "reissued")
        _reply(deps, phone, "So CCCD nay da co tai khoan. Dang nhap bang so CCCD; neu quen mat khau, "
                            "vui long den bo phan mot cua cua phuong.", existing.get("ward_id"), key)
        audit(deps, "sms_register", account_id=existing["_id"], outcome="national_id_taken")
        return Outcome("DK", "refused")
    try:
        citizen_id = accounts.open_account(
            deps, national_id=command.national_id, full_name=name, date_of_birth=command.date_of_birth,
            phone=phone, ward_id=registration_ward, password=password, channel="sms", temporary=True, today=today)
    except DuplicateKeyError:
        _reply(deps, phone, "So CCCD nay vua duoc dang ky. Neu khong phai ban, vui long den bo phan mot cua.", None, key)
        return Outcome("DK", "refused")
    _send_password(deps, phone, password, registration_ward or None, key, ward)
    if command.ward and named is None and ward is not None:
        # The ward they named is unknown or not open yet: say where they were placed and
        # how to move (a second SMS, only in this case). The password is on its way: a
        # failure here must not make the gateway resend the DK.
        try:
            _reply(deps, phone, f"Chua tim thay phuong '{command.ward[:20]}'. Ban da duoc dang ky tai {ward['name']}; "
                                "de chuyen phuong, mang CCCD den bo phan mot cua phuong noi cu tru.",
                   registration_ward, f"{key}:ward")
        except RpcUnavailable:
            log.warning("the ward note of an SMS registration was not sent: notify unavailable")
    audit(deps, "sms_register", account_id=citizen_id, ward_id=registration_ward,
          ward_from_text=named is not None)
    return Outcome("DK", "registered")


def _send_password(deps: Deps, phone: str, password: str, ward_id: str | None, key: str,
                   ward: dict | None = None) -> None:
    variables = {"password": password, "valid_hours": domain.TEMPORARY_PASSWORD_HOURS}
    if ward is not None:
        # Which ward the citizen was placed in, for the reply (unaccented like every SMS reply).
        variables["ward_name"] = unaccent(ward["name"])
    deps.send_reply(phone, "temporary_password", variables, ward_id, key)


# ---------------------------------------------------------------- MK
def _change_password(deps: Deps, phone: str, command: ChangePassword, key: str) -> Outcome:
    found = store.citizens_with_phone(deps.db, phone)
    client = f"sms:{phone}"   # the lockout counts per (account, where the guesses come from)
    if any(accounts.is_locked(deps, a, client) for a in found):
        _reply(deps, phone, "Tai khoan dang tam khoa do nhap sai nhieu lan. Vui long thu lai sau 15 phut.", None, key)
        return Outcome("MK", "refused")
    matching = [a for a in found if store.verify_password(a["password_hash"], command.old_password)]
    if len(matching) != 1:
        for account in found:
            accounts.record_failed_login(deps, account, client)
        audit(deps, "sms_password_change", outcome="wrong_current")
        _reply(deps, phone, "Mat khau cu khong dung. Soan: MK <mat khau cu> <mat khau moi>.", None, key)
        return Outcome("MK", "refused")
    account = matching[0]
    problems = domain.check_password(command.new_password, forbidden=(account["national_id"], phone))
    if problems or command.new_password == command.old_password:
        _reply(deps, phone, f"Mat khau moi chua dat: can it nhat {domain.MIN_PASSWORD_LENGTH} ky tu, khong de doan, "
                            "khong chua so CCCD hay so dien thoai, khac mat khau cu.", account.get("ward_id"), key)
        return Outcome("MK", "refused")
    # An expired temporary password is still accepted here: the message comes from the
    # phone it was sent to. This is what would have kept seed 000's citizens in.
    accounts.change_password(deps, account, command.new_password, channel="sms")
    store.record_successful_login(deps.db, account, deps.clock.now())
    audit(deps, "sms_password_change", account_id=account["_id"])
    deps.send_reply(phone, "password_changed", {}, account.get("ward_id") or None, key)
    return Outcome("MK", "changed")


# ---------------------------------------------------------------- TT
def _status(deps: Deps, phone: str, command: Status, key: str) -> Outcome:
    answer = deps.dossier_status(command.receipt_code, phone[-4:])
    if answer is not None and answer.get("citizen_id") is not None:
        # Only to the phone registered on the dossier: the last four digits alone are shared
        # by one phone in ten thousand.
        if answer["citizen_id"] not in {a["_id"] for a in store.citizens_with_phone(deps.db, phone)}:
            answer = None
    if answer is None:
        # Same answer whether the code is unknown or registered to another phone.
        _reply(deps, phone, f"Khong tim thay ho so {command.receipt_code} gan voi so dien thoai nay.", None, key)
        return Outcome("TT", "refused")
    status = STATUS_TEXT.get(answer.get("status"), answer.get("status", ""))
    due = answer.get("due_date") or ""
    if due:
        y, m, d = due.split("-")
        due = f", hen tra {d}/{m}/{y}"
    _reply(deps, phone, f"Ho so {command.receipt_code}: {status}{due}.", answer.get("ward_id"), key)
    return Outcome("TT", "answered")


# ---------------------------------------------------------------- 1 / 2 / 3 (DG)
NOTHING_TO_RATE = ("Khong co ho so nao cua so dien thoai nay dang cho danh gia. Khi nhan tin bao ho so da co ket qua, "
                   "tra loi 1 (rat hai long), 2 (hai long) hoac 3 (khong hai long).")


def _rate(deps: Deps, phone: str, command: Rate, key: str) -> Outcome:
    """The answer to a result-ready SMS: the most recent dossier of the accounts on this
    phone whose result is ready or was returned lately (dossier decides), rated once
    through rating's own use case, channel sms. Every answer gets a reply."""
    found = []
    for account in store.citizens_with_phone(deps.db, phone):
        dossier = deps.latest_ratable(account["_id"])
        if dossier:
            found.append(dossier)
    if not found:
        _reply(deps, phone, NOTHING_TO_RATE, None, key)
        audit(deps, "sms_rating", outcome="nothing_to_rate")
        return Outcome("DG", "refused")
    dossier = max(found, key=lambda d: d.get("at") or "")
    code, ward_id = dossier["receipt_code"], dossier.get("ward_id")
    answer = deps.rate_dossier(code, command.score) or {}
    outcome = answer.get("outcome")
    if outcome == "rated":
        _reply(deps, phone, f"Cam on ong/ba da danh gia ho so {code}: {SCORE_WORDS[command.score]}.", ward_id, key)
        audit(deps, "sms_rating", ward_id=ward_id, score=command.score)
        return Outcome("DG", "rated")
    if outcome == "already_rated":
        _reply(deps, phone, f"Ho so {code} da duoc danh gia truoc do. Moi ho so chi danh gia mot lan. Cam on ong/ba.",
               ward_id, key)
        return Outcome("DG", "already_rated")
    _reply(deps, phone, NOTHING_TO_RATE, ward_id, key)
    audit(deps, "sms_rating", ward_id=ward_id, outcome=outcome or "not_ratable")
    return Outcome("DG", "refused")


def _reply(deps: Deps, phone: str, text: str, ward_id: str | None, key: str) -> None:
    deps.send_reply(phone, "reply", {"text": unaccent(text)}, ward_id, key)


def bad_gateway_token(deps: Deps, client: str, gateway: str | None = None) -> None:
    """A caller without the gateway's secret: kept in the audit log."""
    details = {"gateway": gateway} if gateway else {}
    audit(deps, "sms_inbound", outcome="bad_gateway_token", client=client, **details)
