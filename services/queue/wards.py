"""Use cases about a ward as a whole: learning of it when identity opens it (WardOpened,
and the demo's wards through the same function), its opening hours (reading them, the
ward admin setting them) and whether the one-stop desk takes tickets right now.

The rules of opening hours are pure, in hours.py; the ward's record is read through the
reference cache (counters.ward), so the check on every ticket costs no database read."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event
from motcua_common.problems import Problem, ValidationFailed, field_error

from . import counters, domain, hours

if TYPE_CHECKING:
    from .deps import Deps

# What the queue keeps of WardOpened (beside the ward's own configuration).
WARD_FIELDS = ("name", "official_code", "province", "province_code", "kind", "target_population")


# ---------------------------------------------------------------- a ward opens
def _ward_fields(payload: Mapping) -> dict:
    fields = {k: payload[k] for k in WARD_FIELDS if payload.get(k) not in (None, "")}
    if isinstance(fields.get("target_population"), str) and fields["target_population"].isdigit():
        fields["target_population"] = int(fields["target_population"])  # int64 travels as a JSON string
    return fields


def record_ward_opened(deps: "Deps", principal: Principal | None, payload: Mapping,
                       opening_hours: Mapping | None = None, session=None) -> None:
    """Remember a ward identity opened: its name, official code and province, and, if it is
    new here, `opening_hours` (hours.default_hours() unless given). A ward opened again
    keeps its services, counters and hours."""
    setting = dict(opening_hours) if opening_hours is not None else hours.default_hours()
    deps.store.record_ward(payload["ward_id"], _ward_fields(payload), setting,
                           domain.to_millis(deps.clock.now()), session)
    deps.cache.forget(("ward", payload["ward_id"]))


def on_ward_opened(deps: "Deps", principal: Principal | None, event: Event) -> str:
    """The worker's WardOpened: record_ward_opened once per event ("processed"/"duplicate")."""
    return handle_once(deps.db, "queue", event,
                       lambda session: record_ward_opened(deps, principal, event.payload, session=session))


# ---------------------------------------------------------------- opening hours
def _as_answer(ward_id: str, setting: Mapping, status: hours.Status) -> dict:
    return {"ward_id": ward_id, "always_open": setting["always_open"], "weekly": setting["weekly"],
            "closed_days": setting["closed_days"], "open_now": status.open,
            "opens_at": domain.iso_utc(status.opens_at) if status.opens_at else None}


def opening_hours(deps: "Deps", principal: Principal | None, ward_id: str) -> dict:
    """The ward's opening hours (anyone may read them), and whether it is open now."""
    ward = counters.require_ward(deps, principal, ward_id)
    setting = hours.effective(ward.get("opening_hours"))
    return _as_answer(ward_id, setting, hours.status_at(setting, deps.clock.local(deps.clock.now())))


def set_opening_hours(deps: "Deps", principal: Principal | None, ward_id: str, body: Mapping) -> dict:
    """The ward admin's new opening hours (the whole setting, replaced)."""
    counters.require_ward(deps, principal, ward_id)
    counters.require_ward_admin(principal, ward_id)
    try:
        setting = hours.read_hours(body)
    except hours.InvalidHours as exc:
        raise ValidationFailed([field_error(f, m) for f, m in exc.errors]) from None
    deps.store.set_opening_hours(ward_id, setting)
    deps.cache.clear()
    return _as_answer(ward_id, setting, hours.status_at(setting, deps.clock.local(deps.clock.now())))


def upcoming_holidays(deps: "Deps", principal: Principal | None, days: int = 365) -> list[dict]:
    """The Vietnamese public holidays of the coming `days` (the desk is closed on them)."""
    today = deps.clock.local(deps.clock.now()).date()
    found = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        name = hours.public_holiday(day)
        if name:
            found.append({"date": day, "name": name})
    return found


def office_status(deps: "Deps", principal: Principal | None, ward_id: str,
                  now: datetime | None = None) -> hours.Status:
    """Is the ward's one-stop desk open at `now` (default: the clock's now)? Its opens_at is
    on the ward's wall clock."""
    ward = counters.ward(deps, ward_id)
    setting = hours.effective(ward.get("opening_hours") if ward else None)
    return hours.status_at(setting, deps.clock.local(now or deps.clock.now()))


def closed_message(status: hours.Status) -> str:
    """What the kiosk and the problem say: why it is closed and when it opens again."""
    text = f"Bộ phận một cửa đang nghỉ ({status.reason})."
    if status.opens_at is not None:
        text += f" Mở cửa lại lúc {hours.describe_opening(status.opens_at)}."
    return text


def require_open(deps: "Deps", principal: Principal | None, ward_id: str, now: datetime) -> None:
    """409 office_closed outside the ward's hours, with when it opens (ISO, UTC)."""
    status = office_status(deps, principal, ward_id, now)
    if status.open:
        return
    raise Problem(409, "office_closed", "Bộ phận một cửa đang nghỉ",
                  f"{closed_message(status)} / The one-stop desk is closed.",
                  opens_at=domain.iso_utc(status.opens_at) if status.opens_at else None, reason=status.reason)
