"""The working-day calendar (ngày làm việc).

Saturdays, Sundays and Vietnam's public holidays (Tết included) do not count. The holiday
data comes from the `holidays` package (country VN, names in Vietnamese), which also knows
the government's occasional swaps: a day off given in exchange for a Saturday worked
(e.g. Monday 31/08/2026 off, Saturday 22/08/2026 worked). We follow it rather than a
plain "weekends off" rule, so a due date matches what the ward office actually does.

Counting rule, as the one-stop desk writes an appointment date: the day of receipt does
not count; the due date is the N-th working day after it. A dossier received on a day off
therefore starts counting on the next working day. N = 0 means "within the day": the
receipt day itself, or the next working day when it was received on a day off.

Administrators add exceptions the holiday data cannot know in advance: an extra day off
(a day of mourning, a typhoon closure) or a Saturday worked in exchange for a bridge day.
An exception overrides both the weekend rule and the holiday data for its day.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, timedelta

import holidays

MAX_WORKING_DAYS = 365
WEEKEND_NAMES = {5: "Thứ Bảy", 6: "Chủ nhật"}


@dataclass(frozen=True)
class SkippedDay:
    day: date
    reason: str


DAY_OFF, WORKING_DAY = "day_off", "working_day"


@dataclass(frozen=True)
class CalendarException:
    day: date
    kind: str  # DAY_OFF or WORKING_DAY
    reason: str


@dataclass(frozen=True)
class DueDate:
    due_date: date
    skipped: tuple[SkippedDay, ...]


class WorkingCalendar:
    """Vietnam's working days. Safe to share between threads."""

    def __init__(self, country_holidays: holidays.HolidayBase | None = None,
                 exceptions: dict[date, CalendarException] | None = None, _lock: threading.Lock | None = None):
        self._holidays = country_holidays if country_holidays is not None else holidays.country_holidays(
            "VN", language="vi"
        )
        # The holidays object fills in each year on first use; two request threads must
        # not fill the same dict at once.
        self._lock = _lock or threading.Lock()
        self.exceptions = dict(exceptions or {})

    def with_exceptions(self, exceptions) -> "WorkingCalendar":
        """This calendar with the administrators' exceptions; shares the holiday data."""
        return WorkingCalendar(self._holidays, {e.day: e for e in exceptions}, self._lock)

    def base_day_off_reason(self, day: date) -> str | None:
        """Why `day` is off by the weekend rule and the holiday data alone."""
        with self._lock:
            if self._holidays.is_working_day(day):
                return None
            holiday = self._holidays.get(day)
        return holiday or WEEKEND_NAMES[day.weekday()]

    def day_off_reason(self, day: date) -> str | None:
        """Why `day` is not a working day (in Vietnamese), or None when it is one."""
        exception = self.exceptions.get(day)
        if exception is not None:
            return None if exception.kind == WORKING_DAY else exception.reason
        return self.base_day_off_reason(day)

    def is_working_day(self, day: date) -> bool:
        return self.day_off_reason(day) is None

    def due_date(self, received_on: date, working_days: int) -> DueDate:
        """The day a dossier received on `received_on` is due, and the days off passed over."""
        if not 0 <= working_days <= MAX_WORKING_DAYS:
            raise ValueError(f"working_days must be between 0 and {MAX_WORKING_DAYS}")
        if working_days == 0 and self.is_working_day(received_on):
            return DueDate(received_on, ())
        to_count = max(working_days, 1)
        skipped: list[SkippedDay] = []
        day = received_on
        while to_count:
            day += timedelta(days=1)
            reason = self.day_off_reason(day)
            if reason is None:
                to_count -= 1
            else:
                skipped.append(SkippedDay(day, reason))
        return DueDate(day, tuple(skipped))

    def add_working_days(self, day: date, working_days: int) -> date:
        return self.due_date(day, working_days).due_date

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 when end <= start)."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count
