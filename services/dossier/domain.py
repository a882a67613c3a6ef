"""Dossier rules: the workflow (state machine), receipt codes, deadlines and what counts as
on time or overdue. Pure: no Flask, nameko or pymongo; tested in microseconds."""
from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date

from motcua_common import wards
from motcua_common.names import unsafe_characters

from .working_days import WorkingCalendar

# ---------------------------------------------------------------- statuses and actions
SUBMITTED = "submitted"
RECEIVED = "received"
PROCESSING = "processing"
SUPPLEMENT_REQUESTED = "supplement_requested"
RESULT_READY = "result_ready"
RETURNED = "returned"
REJECTED = "rejected"

STATUS_LABELS = {
    SUBMITTED: "Đã nộp, chờ tiếp nhận",
    RECEIVED: "Đã tiếp nhận",
    PROCESSING: "Đang giải quyết",
    SUPPLEMENT_REQUESTED: "Chờ bổ sung hồ sơ",
    RESULT_READY: "Đã có kết quả",
    RETURNED: "Đã trả kết quả",
    REJECTED: "Từ chối giải quyết",
}

# action -> {from status: to status}
TRANSITIONS: dict[str, dict[str, str]] = {
    # "receive" also ends a supplement request: the citizen brought what was missing.
    "receive": {SUBMITTED: RECEIVED, SUPPLEMENT_REQUESTED: RECEIVED},
    "start_processing": {RECEIVED: PROCESSING},
    "request_supplement": {RECEIVED: SUPPLEMENT_REQUESTED, PROCESSING: SUPPLEMENT_REQUESTED},
    "reject": {RECEIVED: REJECTED, PROCESSING: REJECTED, SUPPLEMENT_REQUESTED: REJECTED},
    "approve": {PROCESSING: RESULT_READY},
    "return": {RESULT_READY: RETURNED},
}

ACTION_LABELS = {
    "receive": "Tiếp nhận",
    "start_processing": "Chuyển xử lý",
    "request_supplement": "Yêu cầu bổ sung",
    "reject": "Từ chối",
    "approve": "Phê duyệt",
    "return": "Trả kết quả",
}

# Only the ward's leader (chủ tịch, phó chủ tịch) approves and signs a result; the platform
# administrator may stand in.
LEADER_ACTIONS = ("approve",)
LEADER_ROLES = ("leader", "admin")
# The citizen must be told what is missing, or why not: these actions take a note, which
# goes to the citizen by SMS.
NOTE_REQUIRED_ACTIONS = ("request_supplement", "reject")
MAX_CITIZEN_NOTE_LENGTH = 500
MAX_NOTE_LENGTH = 1000

FINISHED_STATUSES = (RETURNED, REJECTED)
# Statuses whose clock runs: a dossier in one of them past its due date is overdue. The
# clock stops while a supplement is awaited (the due date moves when it is supplied).
CLOCK_RUNNING_STATUSES = (SUBMITTED, RECEIVED, PROCESSING, RESULT_READY)


class UnknownAction(ValueError):
    pass


class InvalidTransition(Exception):
    def __init__(self, status: str, action: str):
        super().__init__(f"cannot {action} a dossier that is {status}")
        self.status, self.action = status, action

    @property
    def message(self) -> str:
        return (f"Không thể «{ACTION_LABELS[self.action]}» hồ sơ đang ở trạng thái "
                f"«{STATUS_LABELS.get(self.status, self.status)}».")


def allowed_actions(status: str) -> list[str]:
    return [action for action, moves in TRANSITIONS.items() if status in moves]


@dataclass(frozen=True)
class Outcome:
    """What an action does to a dossier."""

    action: str
    from_status: str
    to_status: str
    due_date: date
    supplement_requested_on: date | None
    returned_on_time: bool | None = None  # set by "return" only


def decide(status: str, action: str, due_date: date, supplement_requested_on: date | None,
           today: date, calendar: WorkingCalendar) -> Outcome:
    """Apply `action` to a dossier in `status`, on `today` (the ward's local date)."""
    if action not in TRANSITIONS:
        raise UnknownAction(action)
    to_status = TRANSITIONS[action].get(status)
    if to_status is None:
        raise InvalidTransition(status, action)
    if to_status == SUPPLEMENT_REQUESTED:
        return Outcome(action, status, to_status, due_date, today)
    if status == SUPPLEMENT_REQUESTED and to_status == RECEIVED:
        # The clock stood still while the citizen gathered the papers: the due date moves
        # by the working days spent waiting.
        waited = calendar.working_days_between(supplement_requested_on or today, today)
        return Outcome(action, status, to_status, calendar.add_working_days(due_date, waited) if waited else due_date, None)
    on_time = is_on_time(today, due_date) if to_status == RETURNED else None
    return Outcome(action, status, to_status, due_date, None, on_time)


def may_take(role: str, action: str) -> bool:
    """Whether a member of the ward's staff in `role` may take `action` (approve: leaders)."""
    return action not in LEADER_ACTIONS or role in LEADER_ROLES


def note_error(action: str, note: object) -> str | None:
    """What is wrong with an action's note, or None. A note the citizen reads (by SMS and
    on the portal) is required for request_supplement and reject, at most
    MAX_CITIZEN_NOTE_LENGTH characters; no note may carry control or invisible characters
    (a direction override would make the SMS say something other than the screen did)."""
    required = action in NOTE_REQUIRED_ACTIONS
    if note is None or (isinstance(note, str) and not note.strip()):
        return "Nhập nội dung: giấy tờ còn thiếu hoặc lý do từ chối." if required else None
    if not isinstance(note, str):
        return "Ghi chú phải là chữ."
    limit = MAX_CITIZEN_NOTE_LENGTH if required else MAX_NOTE_LENGTH
    if len(note.strip()) > limit:
        return f"Ghi chú tối đa {limit} ký tự."
    if unsafe_characters(unicodedata.normalize("NFC", note.strip())):
        return "Ghi chú có ký tự điều khiển hoặc ký tự ẩn (như ký tự đảo chiều văn bản, xuống dòng); xin gõ lại."
    return None


def clean_note(note: str | None) -> str | None:
    return unicodedata.normalize("NFC", note.strip()) or None if isinstance(note, str) else None


# A procedure's name as an SMS carries it: whole when short, else cut at a word.
SMS_NAME_LENGTH = 32


def short_procedure_name(name: str, limit: int = SMS_NAME_LENGTH) -> str:
    """«Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi» -> «Cấp thẻ bảo hiểm y tế cho trẻ…»:
    short enough that an SMS naming it keeps to its segments."""
    name = " ".join(name.split())
    if len(name) <= limit:
        return name
    cut = name[:limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


# ---------------------------------------------------------------- who handles a step
OFFICER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class NotAssignable(Exception):
    def __init__(self, status: str):
        super().__init__(f"a {status} dossier has no step to assign")
        self.status = status


def check_assignable(status: str) -> None:
    """A step can be handed to an officer while the dossier is still being worked on."""
    if status in FINISHED_STATUSES:
        raise NotAssignable(status)


def is_officer_id(value) -> bool:
    return isinstance(value, str) and bool(OFFICER_ID.match(value))


def needs_overdue_notice(status: str, due_date: date, today: date, noticed_for: str | None) -> bool:
    """Overdue, and not yet announced for this due date (a due date moved by a supplement
    can fall overdue again, and is announced again)."""
    return is_overdue(status, due_date, today) and noticed_for != due_date.isoformat()


def is_on_time(returned_on: date, due_date: date) -> bool:
    return returned_on <= due_date


def is_overdue(status: str, due_date: date, today: date) -> bool:
    return status in CLOCK_RUNNING_STATUSES and due_date < today


def on_time_rate(returned: int, returned_on_time: int) -> float | None:
    """Share of returned dossiers returned on time; None when none was returned yet (a
    ward that has returned nothing has no rate, neither 0 % nor 100 %)."""
    if returned == 0:
        return None
    return round(returned_on_time / returned, 4)


# ---------------------------------------------------------------- receipt codes
# No look-alikes (0/O, 1/I/L) so a code read over the phone or off a paper slip is typed
# right; 31 symbols, 5 of them: ~28.6 million codes per ward and day, so codes cannot be
# guessed in sequence and lookups need the phone digits as well.
RECEIPT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RECEIPT_RANDOM_LENGTH = 5


def ward_abbreviation(ward_id: str) -> str:
    """"dn-hai-chau" -> "DNHC": the province part, then the initials of the ward's name."""
    parts = [p for p in re.split(r"[^a-z0-9]+", _ascii(ward_id).lower()) if p]
    if not parts:
        return "PX"
    if len(parts) == 1:
        return parts[0][:4].upper()
    return (parts[0][:3] + "".join(p[0] for p in parts[1:])).upper()[:6]


# A ward office cut off from the centre files dossiers on its own (motcua_platform.
# office_intake) and gives each its receipt code there and then. Its codes have the same
# shape, with this symbol first in the random part; the centre never puts it first, so an
# office's code never collides with the centre's. The centre loses 1/31 of its codes per ward
# and day: ~27.7 million remain. Two offices whose wards share an abbreviation (Hải Châu and
# Hòa Cường are both DNHC), both cut off on the same day, could draw the same code: one chance
# in 31^4 ≈ 923,521 per pair of codes; the centre then keeps the second filing aside with the
# reason (office_filings.REFUSED) rather than give two dossiers one code.
OFFICE_RECEIPT_MARK = "X"
_CENTRE_FIRST_SYMBOLS = RECEIPT_ALPHABET.replace(OFFICE_RECEIPT_MARK, "")


def new_receipt_code(ward_id: str, received_on: date, choose=secrets.choice) -> str:
    """e.g. DNHC-260310-7KQ4M: ward, date of receipt (yymmdd), random part."""
    random_part = choose(_CENTRE_FIRST_SYMBOLS) + "".join(
        choose(RECEIPT_ALPHABET) for _ in range(RECEIPT_RANDOM_LENGTH - 1))
    return f"{ward_abbreviation(ward_id)}-{received_on:%y%m%d}-{random_part}"


def new_office_receipt_code(ward_id: str, received_on: date, choose=secrets.choice) -> str:
    """A receipt code given at a ward office while it is cut off: e.g. DNHC-260310-X7KQ4."""
    random_part = OFFICE_RECEIPT_MARK + "".join(choose(RECEIPT_ALPHABET) for _ in range(RECEIPT_RANDOM_LENGTH - 1))
    return f"{ward_abbreviation(ward_id)}-{received_on:%y%m%d}-{random_part}"


def is_office_receipt_code(code: str) -> bool:
    parts = code.split("-")
    return len(parts) == 3 and parts[2][:1] == OFFICE_RECEIPT_MARK


def receipt_key(code: str) -> str:
    """The form a receipt code is looked up by: upper case, without spaces or dashes, so
    "dnhc 260310 7kq4m" typed on a phone finds DNHC-260310-7KQ4M."""
    return re.sub(r"[^0-9A-Z]", "", _ascii(code).upper())


def _ascii(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


# ---------------------------------------------------------------- identifiers
NATIONAL_ID = re.compile(r"^\d{12}$")
WARD_ID = wards.WARD_ID  # one rule for every service
PHONE_LAST4 = re.compile(r"^\d{4}$")


def is_national_id(value) -> bool:
    return isinstance(value, str) and bool(NATIONAL_ID.match(value))


is_ward_id = wards.is_ward_id


def phone_last4(contact: dict) -> str | None:
    """The last four digits of a citizen's phone, from identity's answer."""
    last4 = contact.get("phone_last4")
    if not last4 and contact.get("phone"):
        digits = re.sub(r"\D", "", contact["phone"])
        last4 = digits[-4:] if len(digits) >= 4 else None
    return last4 or None
