"""Every office's day at the counters, seen from the centre: tickets issued, called and
served per ward and day, with the average wait and service time.

A ward office (`motcua up --profile edge`) issues and calls its tickets on its own queue
service and broker; only its events reach the centre (the uplink shovel carries them to the
centre's queue.events), never its database. This read model is made from those events
alone — TicketIssued, TicketCalled, TicketServed — and the centre's own wards' events feed
it the same way, so every ward is counted by one rule wherever its counters run.

One line per ticket, whatever order its events come in: a redelivered event changes
nothing, and a recall (a second TicketCalled) keeps the first call. Each event is one upsert
that is idempotent by itself (constant fields set, the first call kept by `$min`), so it is
applied without a transaction (handle_idempotent). The day is
the ward's local day (MOTCUA_TIMEZONE) of the event."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from motcua_common.auth import Principal
from motcua_common.consumer import handle_idempotent
from motcua_common.events import Event
from motcua_common.problems import ValidationFailed, field_error, forbidden

from . import store

if TYPE_CHECKING:
    from .deps import Deps

SERVICE = "queue"


def _moment(event: Event) -> datetime:
    moment = datetime.fromisoformat(event.occurred_at)
    if moment.tzinfo is None:
        raise ValueError(f"instant without a time zone: {event.occurred_at!r}")
    return moment.astimezone(timezone.utc)


def ticket_line(event: Event, moment, local_day: str) -> tuple[dict, dict, dict]:
    """(on_insert, changes, earliest) of a ticket event for store.record_ticket_activity."""
    payload = event.payload
    if not payload.get("ticket_id") or not payload.get("ward_id"):
        raise ValueError(f"{event.type} without ticket_id or ward_id")
    on_insert = {"ward_id": payload["ward_id"], "day": local_day, "service_code": payload.get("service_code") or "",
                 "first_seen_at": moment}
    if event.type == "TicketIssued":
        return on_insert, {"issued": 1, "issued_at": moment}, {}
    if event.type == "TicketCalled":
        return on_insert, {"called": 1}, {"first_called_at": moment}
    if event.type == "TicketServed":
        return on_insert, {"served": 1, "served_at": moment, "counter_id": payload.get("counter_id") or "",
                           "wait_seconds": int(payload.get("wait_seconds") or 0),
                           "service_seconds": int(payload.get("service_seconds") or 0)}, {}
    raise ValueError(f"not a ticket event: {event.type}")


def on_ticket_event(deps: "Deps", principal: Principal | None, event: Event) -> str:
    """The worker's TicketIssued, TicketCalled and TicketServed, once per event."""
    moment = _moment(event)
    local_day = deps.clock.local(moment).date().isoformat()
    on_insert, changes, earliest = ticket_line(event, moment, local_day)
    return handle_idempotent(deps.db, SERVICE, event, lambda: store.record_ticket_activity(
        deps.db, event.payload["ticket_id"], on_insert, changes, earliest))


def _day_asked(deps: "Deps", text: str | None) -> str:
    if not text:
        return deps.clock.today().isoformat()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValidationFailed([field_error("date", "Ngày không hợp lệ (YYYY-MM-DD). / Not a date.")]) from None


def _summary(row: dict) -> dict:
    served = row.get("served", 0)
    return {"ward_id": row["_id"], "issued": row.get("issued", 0), "called": row.get("called", 0), "served": served,
            "average_wait_seconds": round(row.get("wait_seconds", 0) / served) if served else None,
            "average_service_seconds": round(row.get("service_seconds", 0) / served) if served else None}


def city_day(deps: "Deps", principal: Principal, day_text: str | None = None) -> dict:
    """Every ward's day at the counters (the monitoring centre and admins), offices included."""
    if principal.role not in ("monitor", "admin"):
        raise forbidden()
    day = _day_asked(deps, day_text)
    wards = sorted((_summary(row) for row in store.activity_of_day(deps.db, day)), key=lambda w: w["ward_id"])
    return {"date": day, "wards": wards}


def ward_day(deps: "Deps", principal: Principal, ward_id: str, day_text: str | None = None) -> dict:
    """One ward's day at the counters, for its staff, the monitoring centre and admins."""
    if not principal.can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên được xem. / Not allowed for this ward.")
    day = _day_asked(deps, day_text)
    rows = store.activity_of_day(deps.db, day, ward_id)
    summary = _summary(rows[0]) if rows else _summary({"_id": ward_id})
    return {"date": day, **summary}
