"""The ward's numbers for its leader: over any range of days, how many dossiers came in
(online, at the counter), how many were returned and how many of those on time, which are
overdue now, and how each procedure fares — as JSON (GET /wards/{ward_id}/stats?from=&to=),
on the page /dossier/desk/{ward_id}/so-lieu, and as CSV and XLSX files (exports.py).

What a range counts, both ends included, in the ward's local days:
  submitted, online, counter   dossiers received (received_on) in the range;
  returned, returned_on_time   dossiers returned (returned_on) in the range;
  overdue, overdue_dossiers    dossiers received in the range that are overdue today
                               (the clock running and the due date passed);
  by_procedure                 the same, per procedure, with its online share.
Without `from` the range starts with the ward's first dossier; without `to` it ends today.

Plain functions `(deps, principal, input)`: the API, the page and the exports call the same
ones. Counted in Python over lean rows (as dossiers._by_procedure did): portable across
MongoDB and the embedded server, and a ward's dossiers are thousands, not millions. No
personal data: no citizen, no national id, no phone, no form."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden
from motcua_common.wards import is_ward_id

from . import domain, store
from .deps import Deps

OVERDUE_LISTED = 500  # the overdue list of the JSON answer and the page (the export has every dossier)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CHANNEL_LABELS = {"online": "Trực tuyến", "counter": "Tại Bộ phận một cửa"}


@dataclass(frozen=True)
class Period:
    first_day: date | None  # None: since the ward's first dossier
    last_day: date

    def as_dict(self) -> dict:
        return {"from": self.first_day.isoformat() if self.first_day else None, "to": self.last_day.isoformat()}


def check_watcher(principal: Principal, ward_id: str) -> None:
    """The ward's staff, the monitoring centre and admins read a ward's numbers (of a ward
    id that can be one: anything else is 404, never a file named after it)."""
    if not principal.can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên xem được số liệu này. "
                        "/ Ward staff, monitor or admin only.")
    if not is_ward_id(ward_id):
        raise Problem(404, "ward_not_found", "Không có phường này", "Không có phường nào mang mã này. / No such ward.")


def period(deps: Deps, from_text: str | None, to_text: str | None) -> Period:
    """The days asked for (YYYY-MM-DD, both optional); 422 for a date that is not one, or
    `from` after `to`."""
    errors: list[dict] = []
    days: dict[str, date | None] = {"from": None, "to": None}
    for name, text in (("from", from_text), ("to", to_text)):
        if text is None or text == "":
            continue
        try:
            if not _ISO_DAY.match(text):
                raise ValueError(text)
            days[name] = date.fromisoformat(text)
        except ValueError:
            errors.append(field_error(name, "Ngày có dạng YYYY-MM-DD, ví dụ 2026-03-01. / A date YYYY-MM-DD."))
    if errors:
        raise ValidationFailed(errors)
    first, last = days["from"], days["to"] or deps.clock.today()
    if first is not None and first > last:
        raise ValidationFailed([field_error("from", "Từ ngày phải trước hoặc bằng đến ngày. / from must not be after to.")])
    return Period(first, last)


def ward_numbers(deps: Deps, principal: Principal, ward_id: str, from_text: str | None = None,
                 to_text: str | None = None) -> dict:
    """GET /wards/{ward_id}/stats?from=&to=: the ward's numbers over the range."""
    check_watcher(principal, ward_id)
    asked = period(deps, from_text, to_text)
    return count(deps, ward_id, asked)


def count(deps: Deps, ward_id: str, asked: Period) -> dict:
    today = deps.clock.today()
    first = asked.first_day.isoformat() if asked.first_day else None
    last = asked.last_day.isoformat()
    received = list(store.ward_rows_received(deps.db, ward_id, first, last))
    returned = list(store.ward_rows_returned(deps.db, ward_id, first, last))
    rows: dict[str, dict] = {}
    names: dict[str, str] = {}

    def row(d: dict) -> dict:
        names.setdefault(d["procedure_code"], d.get("procedure_name") or d["procedure_code"])
        return rows.setdefault(d["procedure_code"], {
            "procedure_code": d["procedure_code"], "submitted": 0, "online": 0, "counter": 0, "returned": 0,
            "returned_on_time": 0, "overdue": 0})

    overdue = []
    for d in received:
        r = row(d)
        r["submitted"] += 1
        r[d["channel"]] = r.get(d["channel"], 0) + 1
        if domain.is_overdue(d["status"], date.fromisoformat(d["due_date"]), today):
            r["overdue"] += 1
            overdue.append(d)
    for d in returned:
        r = row(d)
        r["returned"] += 1
        r["returned_on_time"] += bool(d.get("returned_on_time"))
    by_procedure = []
    for r in rows.values():
        by_procedure.append({**r, "on_time_rate": domain.on_time_rate(r["returned"], r["returned_on_time"]),
                             "online_share": share(r["online"], r["submitted"])})
    by_procedure.sort(key=lambda r: (-r["submitted"], -r["returned"], r["procedure_code"]))
    totals = {key: sum(r[key] for r in rows.values())
              for key in ("submitted", "online", "counter", "returned", "returned_on_time", "overdue")}
    overdue.sort(key=lambda d: (d["due_date"], d["receipt_code"]))
    return {
        "ward_id": ward_id, "as_of": today.isoformat(), **asked.as_dict(), **totals,
        "on_time_rate": domain.on_time_rate(totals["returned"], totals["returned_on_time"]),
        "online_share": share(totals["online"], totals["submitted"]),
        "by_procedure": by_procedure,
        "procedure_names": dict(sorted(names.items())),
        "overdue_dossiers": [overdue_view(d, today) for d in overdue[:OVERDUE_LISTED]],
    }


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def overdue_view(d: dict, today: date) -> dict:
    due = date.fromisoformat(d["due_date"])
    return {"dossier_id": d["_id"], "receipt_code": d["receipt_code"], "procedure_code": d["procedure_code"],
            "procedure_name": d.get("procedure_name") or d["procedure_code"], "status": d["status"],
            "status_label": domain.STATUS_LABELS[d["status"]], "channel": d["channel"],
            "received_on": d.get("received_on"), "due_date": d["due_date"], "days_late": (today - due).days,
            "assignee_id": d.get("assignee_id")}


def ward_dossiers(deps: Deps, principal: Principal, ward_id: str, asked: Period) -> list[dict]:
    """The ward's dossiers received in the range, for an export: receipt code, procedure,
    channel, status, received, due, returned, on time — nothing about the citizen."""
    check_watcher(principal, ward_id)
    today = deps.clock.today()
    first = asked.first_day.isoformat() if asked.first_day else None
    rows = []
    for d in store.ward_rows_received(deps.db, ward_id, first, asked.last_day.isoformat()):
        returned_on = d.get("returned_on") if d["status"] == domain.RETURNED else None
        rows.append({
            "receipt_code": d["receipt_code"], "procedure_code": d["procedure_code"],
            "procedure_name": d.get("procedure_name") or d["procedure_code"], "channel": d["channel"],
            "status": d["status"], "received_on": d.get("received_on"), "due_date": d["due_date"],
            "returned_on": returned_on,
            "on_time": bool(d.get("returned_on_time")) if returned_on else None,
            "overdue": domain.is_overdue(d["status"], date.fromisoformat(d["due_date"]), today),
        })
    rows.sort(key=lambda r: (r["received_on"] or "", r["receipt_code"]))
    return rows
