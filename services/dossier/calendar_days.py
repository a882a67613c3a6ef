"""The working-day calendar as the use cases see it: when a dossier received on a day is
due, and the platform administrator's exceptions (extra days off, working Saturdays).

Plain functions of the dependencies (deps.Deps) and the caller, which the API calls; the
counting itself is working_days.py (pure). Dates arrive as the text the caller typed and
are checked here: the holiday data covers the years 2000-2098, so a date outside them is
a typing mistake."""
from __future__ import annotations

import logging
from datetime import date

from motcua_common.auth import Principal
from motcua_common.http import ValidationFailed, field_error, forbidden, not_found

from . import store
from .deps import Deps
from .dossiers import whole_number, working_calendar
from .working_days import DAY_OFF, MAX_WORKING_DAYS, WORKING_DAY, CalendarException

# Kept under the name the API's route wrote it under (log queries keep matching).
api_log = logging.getLogger("motcua_dossier.api")

_DATE_MESSAGE = "Ngày phải theo dạng YYYY-MM-DD, trong các năm 2000–2098."


def parse_date(raw: str) -> date | None:
    """YYYY-MM-DD in 2000-2098, or None."""
    try:
        value = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        value = None
    if value is None or not 2000 <= value.year <= 2098:
        return None
    return value


def path_date(raw: str) -> date:
    """A day named in a URL path; 422 when it is not one."""
    value = parse_date(raw)
    if value is None:
        raise ValidationFailed([field_error("date", _DATE_MESSAGE)])
    return value


def due_date(deps: Deps, raw_from: str | None, raw_days: str) -> dict:
    """GET /calendar/due-date: a dossier received on `raw_from` (today by default) with
    `raw_days` working days is due when, and which days were skipped."""
    errors: list[dict] = []
    start = deps.clock.today()
    if raw_from:
        parsed = parse_date(raw_from)
        if parsed is None:
            errors.append(field_error("from", _DATE_MESSAGE))
        else:
            start = parsed
    working_days = whole_number("working_days", raw_days, errors, 0, MAX_WORKING_DAYS)
    if errors:
        raise ValidationFailed(errors)
    due = working_calendar(deps).due_date(start, working_days)
    return {
        "from": start.isoformat(), "working_days": working_days, "due_date": due.due_date.isoformat(),
        "skipped": [{"date": s.day.isoformat(), "reason": s.reason} for s in due.skipped],
    }


def exceptions(deps: Deps, raw_year: str | None) -> list[dict]:
    """GET /calendar/exceptions: every exception, or those of one year."""
    errors: list[dict] = []
    year = whole_number("year", raw_year, errors, 2000, 2098) if raw_year is not None else None
    if errors:
        raise ValidationFailed(errors)
    return [{"date": e.day.isoformat(), "kind": e.kind, "reason": e.reason}
            for e in store.calendar_exceptions(deps.db, year)]


def check_admin(principal: Principal) -> None:
    # Days off are decided nationally (or by the province for all its wards): the platform
    # administrator records them, not one ward.
    if principal.role != "admin":
        raise forbidden("Chỉ quản trị viên hệ thống sửa được lịch làm việc. / Platform administrators only.")


def put_exception(deps: Deps, principal: Principal, on: date, body: dict) -> dict:
    """PUT /calendar/exceptions/{day}: a day off on a working day, or a working day on a day off."""
    check_admin(principal)
    kind, reason = body.get("kind"), body.get("reason")
    errors = []
    if kind not in (DAY_OFF, WORKING_DAY):
        errors.append(field_error("kind", "«day_off» (ngày nghỉ thêm) hoặc «working_day» (ngày làm bù)."))
    if not isinstance(reason, str) or not 0 < len(reason.strip()) <= 200:
        errors.append(field_error("reason", "Nêu lý do (tối đa 200 ký tự), ví dụ: Làm bù cho ngày 02/01."))
    if not errors:
        base_off = deps.calendar.base_day_off_reason(on)
        if kind == DAY_OFF and base_off:
            errors.append(field_error("kind", f"Ngày {on:%d/%m/%Y} đã là ngày nghỉ ({base_off})."))
        if kind == WORKING_DAY and not base_off:
            errors.append(field_error("kind", f"Ngày {on:%d/%m/%Y} đã là ngày làm việc."))
    if errors:
        raise ValidationFailed(errors)
    exception = CalendarException(on, kind, reason.strip())
    store.save_calendar_exception(deps.db, exception, principal.subject, deps.clock.now())
    api_log.info("calendar exception saved", extra={"day": on.isoformat(), "kind": kind})
    return {"date": on.isoformat(), "kind": kind, "reason": exception.reason}


def delete_exception(deps: Deps, principal: Principal, on: date) -> None:
    """DELETE /calendar/exceptions/{day}; 404 when the day has none."""
    check_admin(principal)
    if not store.delete_calendar_exception(deps.db, on):
        raise not_found("Ngày này không có ngoại lệ. / No exception on this day.")
