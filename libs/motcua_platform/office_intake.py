"""Counter intake at a ward office while its link to the centre is down (tiếp nhận hồ sơ
khi mất kết nối).

The office (`motcua up --profile edge`) runs no dossier service: the dossiers live at the
centre. While the centre answers, the desk's counter-intake address at the office
(`/dossier/desk/<ward>/tiep-nhan`) sends the officer to the centre's desk. While it does
not, the same address is the office's own intake: the officer signs in at the office
(office_gate: the credentials the office keeps for its own officers), picks the procedure
from the catalog the office keeps, types the citizen's national id, name, date of birth and
phone and the procedure's form, ticks the papers received, and prints the receipt.

Each dossier goes into the office's intake journal (a collection of the office's own
database) with an id and a receipt code given there and then: the code has the centre's
shape and domain.OFFICE_RECEIPT_MARK first in its random part, which the centre never
draws, so the two cannot collide. The appointment date printed is the office's reckoning
(the national holidays, not the ward's own calendar exceptions, which only the centre
knows): the receipt says it is confirmed on reconnection.

Reaching the centre: the courier (`python -m motcua_platform.office_intake courier`, a child
of the edge) hands every journal entry, in the order filed, to the office's broker with a
publisher confirm, onto the exchange motcua.office-filings; from there an uplink queue and
a shovel carry it to the centre exactly like the office's events (edge.py: kept while the
link is down, acknowledged only once the centre's broker confirmed, in order), and the
centre's dossier worker accepts it (motcua_dossier.office_filings) keeping this receipt
code, once by this id. The entry carries the citizen's national id: it is a message to one
service on the office's authenticated broker link, never an event on the public
exchanges. The office learns that the centre accepted a dossier, and its confirmed
appointment date, from the centre's own DossierSubmitted, which comes down to the office
like every dossier of the ward (the office's queue service records it as an appointment;
the journal page reads that record)."""
from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common.auth import WARD_STAFF_ROLES, Principal
from motcua_common.clock import SystemClock
from motcua_common.http import Problem, ValidationFailed, field_error
from motcua_dossier import counter_records, domain
from motcua_dossier.catalog import Procedure, clean_form, form_errors
from motcua_dossier.office_filings import FILING_VERSION, FILINGS_EXCHANGE, MESSAGE_TYPE
from motcua_dossier.working_days import WorkingCalendar

log = logging.getLogger(__name__)

JOURNAL = "office_intake_journal"
CODE_ATTEMPTS = 5
COURIER_INTERVAL_SECONDS = 1.0
CATALOG_REFRESH_SECONDS = 600
JOURNAL_RETENTION_DAYS = 30

# What the officer's page says about a journal entry.
WAITING_LINK = "waiting_link"        # in the office: handed to the uplink, the centre has not answered yet
NOT_HANDED = "not_handed"            # not even handed to the office's broker yet (the courier will)
CONFIRMED = "confirmed"              # the centre's DossierSubmitted came back: the centre has it
STATE_LABELS = {
    NOT_HANDED: "Chưa chuyển đi — đang chờ gửi",
    WAITING_LINK: "Đang chờ kết nối để gửi về trung tâm",
    CONFIRMED: "Trung tâm đã nhận hồ sơ",
}


@dataclass(frozen=True)
class OfficeIntake:
    """What the officer filled in at the office's counter."""
    national_id: str
    procedure_code: str
    form: dict
    papers_received: tuple[str, ...] = ()
    record: dict = field(default_factory=dict)   # full_name, date_of_birth, phone


@dataclass
class OfficeDesk:
    """The office intake's dependencies: its journal, the catalog it keeps, the clock and
    calendar, and where the centre's confirmations are read (the office's queue service's
    appointments, from the centre's DossierSubmitted)."""
    db: Database
    ward_id: str
    catalog: Callable[[], list[dict]]
    appointments: object | None = None
    clock: SystemClock = field(default_factory=SystemClock)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)


def ensure_indexes(db: Database) -> None:
    db[JOURNAL].create_index("receipt_key", unique=True, name="one_receipt_code")
    db[JOURNAL].create_index("form_token", unique=True, sparse=True, name="one_entry_per_form")
    db[JOURNAL].create_index([("handed_over_at", ASCENDING), ("filed_at", ASCENDING), ("_id", ASCENDING)],
                             name="to_hand_over_in_order")
    db[JOURNAL].create_index([("ward_id", ASCENDING), ("filed_at", ASCENDING)], name="journal_by_time")


def kept_catalog(path: Path) -> Callable[[], list[dict]]:
    """The procedures as the office last received them from the centre (office_gate's
    CentreLookups keeps that copy: renewed when the office starts, by the courier every
    CATALOG_REFRESH_SECONDS and by every kiosk lookup while the link is up)."""
    def read() -> list[dict]:
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))["procedures"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
    return read


def _check_staff(desk: OfficeDesk, principal: Principal | None, ward_id: str) -> Principal:
    if principal is None:
        raise Problem(401, "unauthenticated", "Chưa đăng nhập", "Vui lòng đăng nhập. / Sign in first.")
    if ward_id != desk.ward_id or principal.role not in WARD_STAFF_ROLES or principal.ward_id != ward_id:
        raise Problem(403, "forbidden", "Không có quyền",
                      "Chỉ cán bộ của phường này tiếp nhận hồ sơ tại văn phòng. / Staff of this ward only.")
    if principal.must_change_password:
        raise Problem(403, "password_change_required", "Cần đổi mật khẩu",
                      "Bạn đang dùng mật khẩu tạm thời: đổi mật khẩu khi có kết nối với trung tâm.")
    return principal


def procedures(desk: OfficeDesk) -> list[Procedure]:
    """The procedures the office can take: its kept catalog (unreadable entries left out)."""
    found = []
    for item in desk.catalog():
        try:
            found.append(Procedure.from_dict(item))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def procedure(desk: OfficeDesk, code: str) -> Procedure | None:
    return next((p for p in procedures(desk) if p.code == code), None)


def file_at_office(desk: OfficeDesk, principal: Principal | None, ward_id: str, intake: OfficeIntake,
                   form_token: str | None = None) -> dict:
    """Record a dossier in the office's journal: the entry, with its receipt code and the
    provisional appointment date. 422 with every problem at once; nothing is written then.
    The same form_token (one press of «Tiếp nhận» sent twice) returns the first entry."""
    principal = _check_staff(desk, principal, ward_id)
    if form_token:
        earlier = desk.db[JOURNAL].find_one({"form_token": form_token})
        if earlier is not None:
            return earlier
    errors: list[dict] = []
    chosen = procedure(desk, intake.procedure_code) if isinstance(intake.procedure_code, str) else None
    today = desk.clock.today()
    if chosen is None:
        errors.append(field_error("procedure_code", "Chọn thủ tục cần làm."))
    else:
        errors.extend(field_error(f"form.{name}", message)
                      for name, message in form_errors(list(chosen.form), intake.form).items())
        if any(p not in chosen.required_documents for p in intake.papers_received):
            errors.append(field_error("papers_received", "Chỉ đánh dấu các giấy tờ của thủ tục này."))
    # Whether the citizen has an account only the centre knows: the office takes name, date
    # of birth and phone every time (the centre uses the account when there is one).
    cleaned, problems = counter_records.record_errors({**intake.record, "national_id": intake.national_id}, today)
    errors.extend(field_error("national_id" if name == "national_id" else f"record.{name}", message)
                  for name, message in problems.items())
    if errors:
        raise ValidationFailed(errors)
    now = desk.clock.now()
    entry = {
        "_id": str(uuid.uuid4()), "ward_id": ward_id, "procedure_code": chosen.code, "procedure_name": chosen.name,
        "form": clean_form(list(chosen.form), intake.form), "papers_received": list(intake.papers_received),
        "citizen": cleaned, "officer_id": principal.subject, "officer_username": principal.username,
        "filed_at": now, "received_on": today.isoformat(),
        "provisional_due_date": desk.calendar.add_working_days(today, chosen.ward_days).isoformat(),
        "fee": chosen.fee, "handed_over_at": None,
    }
    if form_token:
        entry["form_token"] = form_token
    for _ in range(CODE_ATTEMPTS):
        entry["receipt_code"] = domain.new_office_receipt_code(ward_id, today)
        entry["receipt_key"] = domain.receipt_key(entry["receipt_code"])
        try:
            desk.db[JOURNAL].insert_one(entry)
            break
        except DuplicateKeyError as exc:
            if "form_token" in str(exc):  # the same form sent twice at once: the other one stands
                return desk.db[JOURNAL].find_one({"form_token": form_token})
    else:
        raise Problem(503, "receipt_codes_exhausted", "Chưa cấp được mã hồ sơ", "Vui lòng bấm Tiếp nhận lại.")
    log.info("dossier taken at the office while cut off", extra={"dossier_id": entry["_id"], "ward_id": ward_id,
                                                                "procedure_code": chosen.code})
    return entry


def state_of(desk: OfficeDesk, entry: dict) -> tuple[str, str | None]:
    """(state, the centre's appointment date once confirmed)."""
    confirmed = desk.appointments.find_one({"_id": entry["_id"]}) if desk.appointments is not None else None
    if confirmed is not None:
        return CONFIRMED, confirmed.get("due_date")
    return (WAITING_LINK if entry.get("handed_over_at") else NOT_HANDED), None


def entry_of(desk: OfficeDesk, principal: Principal | None, ward_id: str, entry_id: str) -> dict:
    """One journal entry with its state, for its page and receipt; 404 for another ward's."""
    _check_staff(desk, principal, ward_id)
    entry = desk.db[JOURNAL].find_one({"_id": entry_id, "ward_id": ward_id})
    if entry is None:
        raise Problem(404, "not_found", "Không tìm thấy", "Không có hồ sơ này trong sổ tiếp nhận của văn phòng.")
    entry["state"], entry["confirmed_due_date"] = state_of(desk, entry)
    return entry


def journal(desk: OfficeDesk, principal: Principal | None, ward_id: str, limit: int = 200) -> list[dict]:
    """The office's intake journal, newest first, each entry with its state."""
    _check_staff(desk, principal, ward_id)
    entries = list(desk.db[JOURNAL].find({"ward_id": ward_id}).sort([("filed_at", -1), ("_id", -1)]).limit(limit))
    for entry in entries:
        entry["state"], entry["confirmed_due_date"] = state_of(desk, entry)
    return entries


# ---------------------------------------------------------------- to the centre
def filing_message(entry: dict) -> dict:
    """What the centre's dossier worker receives (motcua_dossier.office_filings.accept)."""
    return {
        "version": FILING_VERSION, "filing_id": entry["_id"], "ward_id": entry["ward_id"],
        "receipt_code": entry["receipt_code"], "procedure_code": entry["procedure_code"], "form": entry["form"],
        "papers_received": entry["papers_received"], "citizen": entry["citizen"],
        "officer_id": entry["officer_id"], "officer_username": entry.get("officer_username"),
        "filed_at": _utc(entry["filed_at"]).isoformat(), "received_on": entry["received_on"],
        "provisional_due_date": entry["provisional_due_date"],
    }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def hand_over(db: Database, publish: Callable[[dict], None], batch: int = 100) -> int:
    """Hand the entries not yet handed over, in the order filed, to `publish` (which returns
    only once the office's broker confirmed); how many. A crash between the confirm and the
    mark sends an entry twice: the centre takes it once (by its id)."""
    handed = 0
    pending = list(db[JOURNAL].find({"handed_over_at": None}).sort(
        [("filed_at", ASCENDING), ("_id", ASCENDING)]).limit(batch))
    for entry in pending:
        publish(filing_message(entry))
        db[JOURNAL].update_one({"_id": entry["_id"]}, {"$set": {"handed_over_at": datetime.now(timezone.utc)}})
        handed += 1
    return handed


def forget_confirmed(db: Database, appointments, now: datetime, days: int = JOURNAL_RETENTION_DAYS) -> int:
    """The journal keeps the citizen's national id, name and phone only as long as the office
    needs them: an entry the centre confirmed (its dossier is the centre's now) is forgotten
    `days` after it was filed, for reprints meanwhile. An entry never confirmed is kept,
    however old. How many were forgotten."""
    from datetime import timedelta

    old = list(db[JOURNAL].find({"filed_at": {"$lt": now - timedelta(days=days)}}, {"_id": 1}))
    confirmed = {a["_id"] for a in appointments.find({"_id": {"$in": [e["_id"] for e in old]}}, {"_id": 1})} if old else set()
    if not confirmed:
        return 0
    return db[JOURNAL].delete_many({"_id": {"$in": sorted(confirmed)}}).deleted_count


class BrokerPublisher:
    """Publishes filings to the office's own broker with publisher confirms (pika)."""

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        self.connection = None
        self.channel = None

    def __call__(self, message: dict) -> None:
        import pika

        if self.channel is None or self.channel.is_closed:
            self.close()
            self.connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            self.channel = self.connection.channel()
            self.channel.confirm_delivery()
        # mandatory: with no uplink queue bound the broker returns it (UnroutableError)
        # instead of confirming a message it dropped.
        self.channel.basic_publish(
            FILINGS_EXCHANGE, message["ward_id"], json.dumps(message, ensure_ascii=False).encode("utf-8"),
            pika.BasicProperties(content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                                 message_id=message["filing_id"], type=MESSAGE_TYPE,
                                 headers={"ward_id": message["ward_id"]}),
            mandatory=True)

    def close(self) -> None:
        try:
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
        except Exception:
            pass
        self.connection = self.channel = None


def run_courier(db: Database, amqp_url: str, interval: float = COURIER_INTERVAL_SECONDS,
                stop: Callable[[], bool] = lambda: False, refresh_catalog: Callable[[], object] | None = None,
                appointments=None) -> None:
    """Hand the journal over as it fills; every CATALOG_REFRESH_SECONDS, renew the office's
    copy of the catalog while the link works (intake while cut off offers that copy) and
    forget the entries the centre confirmed long enough ago."""
    publisher = BrokerPublisher(amqp_url)
    housekeeping_due = 0.0
    while not stop():
        if time.monotonic() >= housekeeping_due:
            housekeeping_due = time.monotonic() + CATALOG_REFRESH_SECONDS
            try:
                if refresh_catalog is not None:
                    refresh_catalog()
                if appointments is not None:
                    forget_confirmed(db, appointments, datetime.now(timezone.utc))
            except Exception as exc:
                log.warning("office intake housekeeping failed: %s", exc.__class__.__name__)
        try:
            if hand_over(db, publisher):
                continue
        except Exception as exc:  # the office's broker or database restarting: again shortly
            log.warning("office filings not handed over yet: %s", exc.__class__.__name__)
            publisher.close()
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    import signal

    from motcua_common.config import Settings
    from motcua_common.logs import configure_logging
    from motcua_common.mongo import connect, service_database
    from motcua_platform.office_gate import CentreLookups

    parser = argparse.ArgumentParser(prog="motcua-office-intake")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("courier", help="hand the office's intake journal to the uplink")
    parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging("edge", "office-intake", settings.log_level)
    db = service_database(connect(settings), settings, "office")
    ensure_indexes(db)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    lookups = CentreLookups(os.environ["MOTCUA_CENTRAL_URL"], Path(settings.data_dir) / "catalog-cache.json")
    appointments = service_database(db.client, settings, "queue")["appointments"]
    run_courier(db, settings.amqp_url, stop=lambda: bool(stopping), refresh_catalog=lookups.catalog,
                appointments=appointments)
    return 0


def new_form_token() -> str:
    return secrets.token_urlsafe(16)


def vn_date(value: str | date | None) -> str:
    if not value:
        return "—"
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day:%d/%m/%Y}"


if __name__ == "__main__":
    raise SystemExit(main())
