"""A ward's opening hours, as pure rules (no Flask, nameko or pymongo): when the one-stop
desk takes tickets, and when it opens again.

A ward's setting is a plain document, stored on the ward (store.py) and answered by
GET /wards/{w}/opening-hours as it is:

    {"always_open": false,
     "weekly": {"mon": [{"opens": "07:30", "closes": "11:30"}, {"opens": "13:30", "closes": "17:00"}],
                ..., "sat": [], "sun": []},
     "closed_days": ["2026-12-24"]}

Up to two sessions a weekday (morning and afternoon, as ward offices work); a weekday
without sessions is closed. Vietnamese public holidays (the `holidays` package, country VN,
names in Vietnamese, the government's swapped days off included) are closed, and so are
the ward's own closed days (a typhoon, a day of mourning). `always_open` opens the desk at
every hour of every day, holidays included: the demo wards use it, and so may a ward that
pilots a 24/7 kiosk. A ward recorded before opening hours existed has no setting at all
and keeps issuing as it always did (`effective`)."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Mapping

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
MAX_SESSIONS = 2
MAX_CLOSED_DAYS = 366
# How far ahead the next opening is looked for (a ward closed every weekday never opens).
LOOKAHEAD_DAYS = 400

_MORNING = {"opens": "07:30", "closes": "11:30"}
_AFTERNOON = {"opens": "13:30", "closes": "17:00"}
DEFAULT = {
    "always_open": False,
    "weekly": {day: ([dict(_MORNING), dict(_AFTERNOON)] if day not in ("sat", "sun") else []) for day in WEEKDAYS},
    "closed_days": [],
}

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def default_hours() -> dict:
    return {"always_open": False, "weekly": {d: [dict(s) for s in DEFAULT["weekly"][d]] for d in WEEKDAYS},
            "closed_days": []}


def always_open_hours() -> dict:
    return {**default_hours(), "always_open": True}


def effective(stored: Mapping | None) -> dict:
    """The setting rules read: a ward recorded before opening hours existed (no setting)
    is open at all hours, as it was."""
    return dict(stored) if stored else always_open_hours()


# ---------------------------------------------------------------- holidays
_vn_holidays = holidays.country_holidays("VN", language="vi")
_holiday_lock = threading.Lock()  # the holidays object fills in each year on first use


def public_holiday(day: date) -> str | None:
    """The Vietnamese public holiday on `day` (its name in Vietnamese), or None."""
    with _holiday_lock:
        return _vn_holidays.get(day)


# ---------------------------------------------------------------- reading a setting
class InvalidHours(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def read_sessions(day: str, sessions, errors: list[tuple[str, str]]) -> list[dict]:
    field = f"weekly.{day}"
    if sessions is None:
        return []
    if not isinstance(sessions, list):
        errors.append((field, "Phải là danh sách các buổi làm việc. / Must be a list of sessions."))
        return []
    if len(sessions) > MAX_SESSIONS:
        errors.append((field, "Mỗi ngày có tối đa hai buổi làm việc. / At most two sessions a day."))
        return []
    read, previous_close = [], None
    for index, session in enumerate(sessions):
        where = f"{field}[{index}]"
        if not isinstance(session, Mapping):
            errors.append((where, "Buổi làm việc phải có giờ mở (opens) và giờ đóng (closes). / Need opens and closes."))
            continue
        opens, closes = session.get("opens"), session.get("closes")
        bad = False
        for key, value in (("opens", opens), ("closes", closes)):
            if not isinstance(value, str) or not _HHMM.match(value):
                errors.append((f"{where}.{key}", "Giờ phải viết dạng HH:MM, ví dụ 07:30. / Time as HH:MM."))
                bad = True
        if bad:
            continue
        if _minutes(opens) >= _minutes(closes):
            errors.append((f"{where}.closes", "Giờ đóng cửa phải sau giờ mở cửa. / closes must be after opens."))
            continue
        if previous_close is not None and _minutes(opens) < previous_close:
            errors.append((f"{where}.opens", "Buổi chiều phải bắt đầu sau khi buổi sáng kết thúc. / "
                                             "Sessions must not overlap and must be in order."))
            continue
        previous_close = _minutes(closes)
        read.append({"opens": opens, "closes": closes})
    return read


def read_closed_days(value, errors: list[tuple[str, str]]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(("closed_days", "Phải là danh sách ngày dạng YYYY-MM-DD. / A list of YYYY-MM-DD dates."))
        return []
    if len(value) > MAX_CLOSED_DAYS:
        errors.append(("closed_days", f"Tối đa {MAX_CLOSED_DAYS} ngày nghỉ riêng. / At most {MAX_CLOSED_DAYS} days."))
        return []
    days = set()
    for index, text in enumerate(value):
        try:
            if not isinstance(text, str) or len(text) != 10:
                raise ValueError(text)
            days.add(date.fromisoformat(text).isoformat())
        except ValueError:
            errors.append((f"closed_days[{index}]", "Ngày phải viết dạng YYYY-MM-DD. / Date as YYYY-MM-DD."))
    return sorted(days)


def read_hours(body: Mapping) -> dict:
    """A PUT's body as a setting; InvalidHours with every (field, message) wrong."""
    errors: list[tuple[str, str]] = []
    always_open = body.get("always_open", False)
    if not isinstance(always_open, bool):
        errors.append(("always_open", "Phải là true hoặc false. / Must be a boolean."))
    weekly_in = body.get("weekly")
    weekly: dict[str, list[dict]] = {}
    if not isinstance(weekly_in, Mapping):
        errors.append(("weekly", "Hãy cho giờ làm việc theo ngày trong tuần (mon … sun). / weekly is required."))
    else:
        unknown = sorted(set(weekly_in) - set(WEEKDAYS))
        if unknown:
            errors.append(("weekly", f"Ngày không hợp lệ: {', '.join(map(str, unknown))}; dùng mon … sun. / "
                                     "Unknown weekday."))
        for day in WEEKDAYS:
            weekly[day] = read_sessions(day, weekly_in.get(day), errors)
    closed_days = read_closed_days(body.get("closed_days"), errors)
    if errors:
        raise InvalidHours(errors)
    return {"always_open": always_open, "weekly": weekly, "closed_days": closed_days}


# ---------------------------------------------------------------- open or closed
@dataclass(frozen=True)
class Status:
    open: bool
    opens_at: datetime | None = None   # local time the desk opens next (None: open, or never)
    reason: str | None = None          # why it is closed now, in Vietnamese


def _sessions_on(hours: Mapping, day: date) -> tuple[list[tuple[int, int]], str | None]:
    """(sessions as minutes of the day, None) or ([], why the whole day is off)."""
    if day.isoformat() in set(hours.get("closed_days") or ()):
        return [], "ngày nghỉ của phường"
    holiday = public_holiday(day)
    if holiday:
        return [], f"nghỉ lễ {holiday}"
    sessions = [(_minutes(s["opens"]), _minutes(s["closes"]))
                for s in (hours.get("weekly") or {}).get(WEEKDAYS[day.weekday()], [])]
    if not sessions:
        return [], f"{WEEKDAY_NAMES[day.weekday()]} không làm việc"
    return sessions, None


def status_at(hours: Mapping, local: datetime) -> Status:
    """Whether the desk is open at `local` (the ward's wall clock), and if not, why and
    when it opens next."""
    if hours.get("always_open"):
        return Status(True)
    today = local.date()
    minute = local.hour * 60 + local.minute
    sessions, day_off = _sessions_on(hours, today)
    for opens, closes in sessions:
        if opens <= minute < closes:
            return Status(True)
    between = any(closes <= minute for _, closes in sessions) and any(minute < opens for opens, _ in sessions)
    reason = day_off or ("nghỉ trưa" if between else "ngoài giờ làm việc")
    return Status(False, next_opening(hours, local), reason)


def next_opening(hours: Mapping, local: datetime) -> datetime | None:
    """The first moment after `local` the desk opens (local time), or None within LOOKAHEAD_DAYS."""
    minute = local.hour * 60 + local.minute
    for offset in range(LOOKAHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        sessions, _ = _sessions_on(hours, day)
        for opens, _closes in sessions:
            if offset > 0 or opens > minute:
                return datetime.combine(day, time(opens // 60, opens % 60), tzinfo=local.tzinfo)
    return None


def describe_opening(moment: datetime) -> str:
    """07:30 thứ Hai 08/12 — how the kiosk and the problem say when the desk opens."""
    return f"{moment:%H:%M} {WEEKDAY_NAMES[moment.weekday()]} {moment:%d/%m}"
