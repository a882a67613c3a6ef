"""What identity does with an SMS sent to the short code (seed 000).

DK registers a citizen and texts back a temporary password valid 72 hours with one
sentence on how to change it; MK changes a password; TT answers a dossier's status to the
phone registered on it. Every message gets an answer — a malformed one gets the right
form. Replies go out through notify (`send_reply`); the temporary password is handed to
notify as a command and is never logged, stored in clear or put in an event.

The seed's failure — passwords that expired after three days and locked people out — is
answered twice: the reply says how to change the password, and a citizen whose temporary
password expired can still change it by SMS from the phone it was sent to (holding that
phone is the proof), or text DK again for a new one."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from . import domain, store
from .sms_commands import ChangePassword, NotUnderstood, Register, Status, parse, unaccent

log = logging.getLogger(__name__)

# send_reply(to, template, variables, ward_id, key)
SendReply = Callable[[str, str, dict, str | None, str], object]
# dossier_status(receipt_code, phone_last4) -> {"status", "due_date", ...} | None
DossierStatus = Callable[[str, str], dict | None]

STATUS_TEXT = {
    "submitted": "da nop, cho tiep nhan", "received": "da tiep nhan", "processing": "dang xu ly",
    "supplement_requested": "can bo sung giay to", "result_ready": "da co ket qua, moi den nhan",
    "returned": "da tra ket qua", "rejected": "bi tu choi",
}


@dataclass(frozen=True)
class Outcome:
    command: str     # DK | MK | TT | unknown
    result: str      # registered | reissued | changed | answered | refused | help


class SmsDesk:
    def __init__(self, db: Database, send_reply: SendReply, dossier_status: DossierStatus,
                 clock: Callable[[], datetime], registration_ward: str = ""):
        self.db, self.send_reply, self.dossier_status = db, send_reply, dossier_status
        self.clock, self.registration_ward = clock, registration_ward

    def handle(self, phone: str, text: str, message_key: str) -> Outcome:
        command = parse(text)
        key = hashlib.sha256(f"{phone}|{message_key}".encode()).hexdigest()[:32]
        if isinstance(command, NotUnderstood):
            self._reply(phone, command.reply, None, key)
            return Outcome("unknown", "help")
        if isinstance(command, Register):
            return self._register(phone, command, key)
        if isinstance(command, ChangePassword):
            return self._change_password(phone, command, key)
        return self._status(phone, command, key)

    # ------------------------------------------------------------ DK
    def _register(self, phone: str, command: Register, key: str) -> Outcome:
        today = self.clock().date()
        problems = domain.check_national_id(command.national_id, command.date_of_birth)
        if command.date_of_birth > today:
            problems.append(domain.FieldError("date_of_birth", "future"))
        name = domain.normalise_name(command.full_name)
        if problems or name is None:
            reason = ("So CCCD khong hop le hoac khong khop nam sinh." if problems
                      else "Ho ten chi gom chu cai va khoang trang.")
            self._reply(phone, f"Chua dang ky duoc: {reason} Soan: DK <so CCCD> <ho ten> <ngay/thang/nam sinh>.", None, key)
            return Outcome("DK", "refused")
        password = domain.new_temporary_password()
        existing = self.db.citizens.find_one({"national_id": command.national_id})
        if existing is not None:
            if existing.get("channel") == "sms" and existing.get("phone") == phone and existing.get("must_change_password"):
                # The first reply was lost or the password expired unused: issue a new one.
                store.set_temporary_password(self.db, existing, password, self._expiry())
                self._send_password(phone, password, existing.get("ward_id"), key)
                store.audit(self.db, "sms_register", account_id=existing["_id"], outcome="reissued")
                return Outcome("DK", "reissued")
            self._reply(phone, "So CCCD nay da co tai khoan. Dang nhap bang so CCCD; neu quen mat khau, "
                               "vui long den bo phan mot cua cua phuong.", existing.get("ward_id"), key)
            store.audit(self.db, "sms_register", account_id=existing["_id"], outcome="national_id_taken")
            return Outcome("DK", "refused")
        try:
            citizen_id = store.register_citizen(
                self.db, national_id=command.national_id, full_name=name, date_of_birth=command.date_of_birth,
                phone=phone, ward_id=self.registration_ward, password=password, channel="sms", today=today,
                temporary_until=self._expiry())
        except DuplicateKeyError:
            self._reply(phone, "So CCCD nay vua duoc dang ky. Neu khong phai ban, vui long den bo phan mot cua.", None, key)
            return Outcome("DK", "refused")
        self._send_password(phone, password, self.registration_ward or None, key)
        store.audit(self.db, "sms_register", account_id=citizen_id)
        return Outcome("DK", "registered")

    def _expiry(self) -> datetime:
        return self.clock() + timedelta(hours=domain.TEMPORARY_PASSWORD_HOURS)

    def _send_password(self, phone: str, password: str, ward_id: str | None, key: str) -> None:
        self.send_reply(phone, "temporary_password",
                        {"password": password, "valid_hours": domain.TEMPORARY_PASSWORD_HOURS}, ward_id, key)

    # ------------------------------------------------------------ MK
    def _change_password(self, phone: str, command: ChangePassword, key: str) -> Outcome:
        accounts = list(self.db.citizens.find({"phone": phone}).limit(10))
        now = self.clock()
        if any(_locked(a, now) for a in accounts):
            self._reply(phone, "Tai khoan dang tam khoa do nhap sai nhieu lan. Vui long thu lai sau 15 phut.", None, key)
            return Outcome("MK", "refused")
        matching = [a for a in accounts if store.verify_password(a["password_hash"], command.old_password)]
        if len(matching) != 1:
            for account in accounts:
                store.record_failed_login(self.db, account)
            store.audit(self.db, "sms_password_change", outcome="wrong_current")
            self._reply(phone, "Mat khau cu khong dung. Soan: MK <mat khau cu> <mat khau moi>.", None, key)
            return Outcome("MK", "refused")
        account = matching[0]
        problems = domain.check_password(command.new_password, forbidden=(account["national_id"], phone))
        if problems or command.new_password == command.old_password:
            self._reply(phone, f"Mat khau moi chua dat: can it nhat {domain.MIN_PASSWORD_LENGTH} ky tu, khong de doan, "
                               "khong chua so CCCD hay so dien thoai, khac mat khau cu.", account.get("ward_id"), key)
            return Outcome("MK", "refused")
        # An expired temporary password is still accepted here: the message comes from the
        # phone it was sent to. This is what would have kept seed 000's citizens in.
        store.change_password(self.db, account, command.new_password, channel="sms")
        store.record_successful_login(self.db, account)
        store.audit(self.db, "sms_password_change", account_id=account["_id"])
        self.send_reply(phone, "password_changed", {}, account.get("ward_id") or None, key)
        return Outcome("MK", "changed")

    # ------------------------------------------------------------ TT
    def _status(self, phone: str, command: Status, key: str) -> Outcome:
        answer = self.dossier_status(command.receipt_code, phone[-4:])
        if answer is None:
            # Same answer whether the code is unknown or registered to another phone.
            self._reply(phone, f"Khong tim thay ho so {command.receipt_code} gan voi so dien thoai nay.", None, key)
            return Outcome("TT", "refused")
        status = STATUS_TEXT.get(answer.get("status"), answer.get("status", ""))
        due = answer.get("due_date") or ""
        if due:
            y, m, d = due.split("-")
            due = f", hen tra {d}/{m}/{y}"
        self._reply(phone, f"Ho so {command.receipt_code}: {status}{due}.", answer.get("ward_id"), key)
        return Outcome("TT", "answered")

    def _reply(self, phone: str, text: str, ward_id: str | None, key: str) -> None:
        self.send_reply(phone, "reply", {"text": unaccent(text)}, ward_id, key)


def _locked(account: dict, now: datetime) -> bool:
    until = account.get("locked_until")
    if until is None:
        return False
    from datetime import timezone

    return until.replace(tzinfo=timezone.utc) > now
