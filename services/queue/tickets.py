"""Use cases of a ticket's life: issue it (numbered within its service and local day, with
the wait a kiosk prints), call the next one to a counter, act on a called one (serve,
skip, recall, transfer), show a counter's current ticket and where a ticket stands.

The rules themselves are pure, in domain.py; the events in events.py; the queries in
store.py. Functions take `(deps, principal, input...)` and are called alike by the API,
the pages and the CLI; refusals are motcua_common.http.Problem with the contract's codes."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Mapping

from motcua_common import metrics
from motcua_common.auth import STAFF_ROLES, AuthError, Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden

from . import counter_sessions, counters, domain, events, wards
from .store import TicketChanged

if TYPE_CHECKING:
    from .deps import Deps

# Each lost race means another counter took a ticket; this bound is never met in a ward.
MAX_CALL_ATTEMPTS = 50


def day_of(deps: "Deps", now: datetime) -> str:
    """The ward's local day (YYYY-MM-DD) at `now`: numbers restart at local midnight."""
    return deps.clock.local(now).date().isoformat()


def staff_of(principal: Principal, ward_id: str) -> Principal:
    if not principal.is_staff_of(ward_id):
        raise forbidden("Chỉ cán bộ của phường mới thực hiện được thao tác này. / Only the ward's staff may do this.")
    return principal


def _recent_service_seconds(deps: "Deps", ward_id: str, service_code: str) -> list[int]:
    """The service's latest service times, for the estimate; remembered like reference
    data (a serve through this process forgets them at once)."""
    return deps.cache.remembered(("recent", ward_id, service_code), lambda: deps.store.recent_service_seconds(
        ward_id, service_code, domain.RECENT_SERVICE_SAMPLE))


def _estimate(deps: "Deps", ward_id: str, service_code: str, ahead: int) -> int:
    return domain.estimate_wait_minutes(ahead, _recent_service_seconds(deps, ward_id, service_code),
                                        counters.counters_serving(deps, ward_id, service_code))


# ---------------------------------------------------------------- issuing
def _day_start(deps: "Deps", ward_id: str, service_code: str, day: str) -> dict[str, int]:
    """What the service's day counts start from (store.day_start): moved only by a restore,
    into a stopped platform, so remembered like reference data (nothing included)."""
    key = domain.sequence_key(ward_id, service_code, day)
    return deps.cache.remembered(("day_start", key), lambda: deps.store.day_start(key))


@dataclass(frozen=True)
class TicketOrder:
    ward_id: str
    service: dict
    priority: str


def authorize_issue(deps: "Deps", principal: Principal | None, ward_id: str) -> Principal | None:
    """A kiosk paired to the ward or the ward's staff issue tickets. No principal at all is
    accepted with --demo only (an unpaired kiosk); a credential that is sent must fit."""
    if principal is None:
        if deps.settings.demo:
            return None
        raise AuthError("unauthorized", "Cần đăng nhập. / Authentication required.")
    if (principal.role == "kiosk" and principal.ward_id == ward_id) or principal.is_staff_of(ward_id):
        return principal
    raise forbidden("Chỉ máy lấy số hoặc cán bộ của phường mới cấp được số thứ tự. / "
                    "Only the ward's kiosks and staff issue tickets.")


def read_order(deps: "Deps", principal: Principal | None, ward_id: str, body: Mapping) -> TicketOrder:
    """A ticket request (service_code, priority) checked against the ward's services."""
    errors = []
    code, service = body.get("service_code"), None
    if not isinstance(code, str) or not code:
        errors.append(field_error("service_code", "Hãy chọn dịch vụ. / service_code is required."))
    else:
        service = counters.service(deps, ward_id, code)
        if service is None:
            errors.append(field_error("service_code", f"Phường không có dịch vụ '{code}'. / Unknown service."))
    priority = body.get("priority", domain.NORMAL)
    if priority not in domain.PRIORITIES:
        errors.append(field_error("priority", "Ưu tiên phải là 'normal' hoặc 'priority'. / "
                                              "priority must be normal or priority."))
    if errors:
        raise ValidationFailed(errors)
    return TicketOrder(ward_id, service, priority)


def issue(deps: "Deps", principal: Principal | None, order: TicketOrder) -> dict:
    """Issue a ticket (authorize_issue and read_order come first) and answer what the
    kiosk prints: its number, the people ahead and the estimated wait. Outside the ward's
    opening hours: 409 office_closed (the ward's record is in the reference cache)."""
    ward_id, service, priority = order.ward_id, order.service, order.priority
    now = domain.to_millis(deps.clock.now())
    wards.require_open(deps, principal, ward_id, now)
    day = day_of(deps, now)
    rank = domain.PRIORITY_RANK[priority]
    # The number and its TicketIssued's place in the ward's publication order: one command
    # (store.take_number); the ticket and its event: one transaction.
    counts = deps.store.take_number(ward_id, service["code"], day, rank, now,
                                    base=_day_start(deps, ward_id, service["code"], day))
    ticket = domain.new_ticket(str(uuid.uuid4()), ward_id, day, service, counts["value"], priority, now,
                               queued_at=domain.as_utc(counts["queued_at"]))
    deps.store.insert_ticket(ticket, [events.ticket_issued(ticket)], seq=counts["seq"])
    # From the counts the number came with: no scan of a queue that grows all morning.
    ahead = domain.waiting_ahead_at_issue(rank, domain.counts_by_rank(counts, "issued"),
                                          domain.counts_by_rank(counts, "called"))
    return {
        "ticket_id": ticket["_id"],
        "number": ticket["number"],
        "service_code": ticket["service_code"],
        "service_name": service["name"],
        "priority": ticket["priority"],
        "ward_id": ward_id,
        "issued_at": domain.iso_utc(ticket["issued_at"]),
        "waiting_ahead": ahead,
        "estimated_wait_minutes": _estimate(deps, ward_id, service["code"], ahead),
    }


# ---------------------------------------------------------------- calling
def call_next(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> dict | None:
    """Call the counter's next ticket of today, or None when nobody waits for it.

    Only the officer holding the counter calls there (a free counter is taken on the way;
    409 counter_taken when another officer holds it). While the counter has a ticket called
    and not closed, that ticket is the answer again ("already_called": a double click never
    calls two tickets to one counter); the counter's call lock (counter_sessions) makes two
    concurrent calls at one counter take turns (409 call_in_progress for the second).

    Two counters calling at once never get the same ticket: the claim is a compare-and-set
    on status `waiting`; the loser chooses again (503 queue_busy if that keeps failing)."""
    counters.require_ward(deps, principal, ward_id)
    staff_of(principal, ward_id)
    counter = counters.require_counter(deps, ward_id, counter_id)
    now = domain.to_millis(deps.clock.now())
    day = day_of(deps, now)
    if counter_sessions.held_lately(deps, principal, ward_id, counter_id):
        # An idle counter calls again and again: answered by reads alone while nobody waits
        # for it (or its ticket is still open), without claiming the counter and taking its
        # lock. Only a call that has a ticket to claim takes the lock and reads again.
        open_call = deps.store.newest_called_at_counter(ward_id, counter_id)
        if open_call is not None and open_call["day"] == day:
            return {**_called_answer(open_call, counter_id), "already_called": True}
        line = deps.store.waiting_line(ward_id, day)
        if domain.choose_next((domain.waiting_ticket(d) for d in line.values()), counter_id,
                              counter["service_codes"]) is None:
            return None
        lock = counter_sessions.lock_for_call(deps, principal, ward_id, counter_id)
    else:
        lock = counter_sessions.hold_for_call(deps, principal, ward_id, counter_id)
    try:
        open_call = deps.store.newest_called_at_counter(ward_id, counter_id)
        if open_call is not None and open_call["day"] == day:
            return {**_called_answer(open_call, counter_id), "already_called": True}
        for _ in range(MAX_CALL_ATTEMPTS):
            line = deps.store.waiting_line(ward_id, day)
            chosen = domain.choose_next((domain.waiting_ticket(d) for d in line.values()), counter_id,
                                        counter["service_codes"])
            if chosen is None:
                return None
            called = _claim(deps, line[chosen.ticket_id], counter_id, now)
            if called is not None:
                return _called_answer(called, counter_id)
    finally:
        counter_sessions.let_go(deps, ward_id, counter_id, lock)
    raise Problem(503, "queue_busy", "Hàng đợi đang bận", "Vui lòng bấm gọi lại. / Busy, retry.",
                  headers={"Retry-After": "1"})


def _called_answer(called: dict, counter_id: str) -> dict:
    return {
        "ticket_id": called["_id"],
        "number": called["number"],
        "counter_id": counter_id,
        "service_code": called["service_code"],
        "priority": called["priority"],
        "called_at": domain.iso_utc(called["called_at"]),
    }


def _claim(deps: "Deps", waiting: dict, counter_id: str, now: datetime) -> dict | None:
    first_call = waiting.get("first_called_at") is None
    called = deps.store.claim(waiting, counter_id, now, lambda doc: [events.ticket_called(doc)])
    if called is not None and first_call:
        # Off the line for good (waiting_ahead_at_issue), outside the call's transaction.
        deps.store.count_first_call(called["ward_id"], called["service_code"], called["day"], called["priority_rank"])
        metrics.QUEUE_WAIT_SECONDS.labels(called["ward_id"]).observe(
            (called["called_at"] - called["issued_at"]).total_seconds())
    return called


# ---------------------------------------------------------------- officer actions
def authorize_action(principal: Principal) -> None:
    if principal.role not in STAFF_ROLES:
        raise forbidden("Chỉ cán bộ mới xử lý được số thứ tự. / Only staff act on tickets.")


def _read_action(body: Mapping) -> tuple[str, str | None]:
    action, counter_id = body.get("action"), body.get("counter_id")
    errors = []
    if action not in domain.ACTIONS:
        errors.append(field_error("action", "Thao tác phải là serve, skip, recall hoặc transfer. / Unknown action."))
    if action == domain.TRANSFER and (not isinstance(counter_id, str) or not counter_id):
        errors.append(field_error("counter_id", "Hãy chọn quầy nhận chuyển. / counter_id is required to transfer."))
    if errors:
        raise ValidationFailed(errors)
    return action, counter_id


def _invalid_transition(status: str, action: str, detail: str) -> Problem:
    return Problem(409, "invalid_transition", "Không thể thực hiện thao tác", detail,
                   ticket_status=status, action=action, allowed_actions=domain.allowed_actions(status))


def act(deps: "Deps", principal: Principal, ticket_id: str, body: Mapping) -> dict:
    """An officer serves, skips, recalls or transfers a called ticket of their ward."""
    authorize_action(principal)
    action, target_counter = _read_action(body)
    ticket = deps.store.ticket(ticket_id)
    if ticket is None:
        raise Problem(404, "ticket_not_found", "Không tìm thấy số thứ tự", "Không có số thứ tự này. / Unknown ticket.")
    staff_of(principal, ticket["ward_id"])
    if ticket["status"] == domain.CALLED and ticket.get("counter_id"):
        # Only the officer at that counter: a serve (and the rating of it) is credited to them.
        counter_sessions.require_holder(deps, principal, ticket["ward_id"], ticket["counter_id"])
    if action == domain.TRANSFER and counters.counter(deps, ticket["ward_id"], target_counter) is None:
        raise ValidationFailed([field_error("counter_id", f"Phường không có quầy '{target_counter}'. / Unknown counter.")])
    try:
        updated = apply_action(deps, ticket, action, principal.subject, target_counter)
    except domain.InvalidTransition as exc:
        raise _invalid_transition(exc.status, action,
                                  f"Số {ticket['number']} đang ở trạng thái '{exc.status}', không thể '{action}'. / "
                                  f"Cannot {action} a {exc.status} ticket.") from None
    except TicketChanged:
        raise _invalid_transition(ticket["status"], action,
                                  f"Số {ticket['number']} vừa được xử lý ở nơi khác, hãy tải lại. / "
                                  "The ticket changed meanwhile; reload it.") from None
    answer = {"ticket_id": updated["_id"], "number": updated["number"], "status": updated["status"]}
    if updated.get("counter_id"):
        answer["counter_id"] = updated["counter_id"]
    if updated.get("transferred_to"):
        answer["transferred_to"] = updated["transferred_to"]
    return answer


def apply_action(deps: "Deps", ticket: dict, action: str, officer_id: str,
                 target_counter_id: str | None = None) -> dict:
    """Write an action on the ticket as it was read. Raises domain.InvalidTransition, or
    store.TicketChanged when another officer acted on it first."""
    now = domain.to_millis(deps.clock.now())
    change = domain.action_change(ticket, action, now, officer_id, target_counter_id)
    updated = deps.store.update_called(ticket, change.fields, change.increments,
                                       events.after_action(ticket, action, change, now, officer_id))
    if action == domain.SERVE:
        deps.cache.forget(("recent", ticket["ward_id"], ticket["service_code"]))
    return updated


def current_at_counter(deps: "Deps", principal: Principal, ward_id: str, counter_id: str) -> dict | None:
    """The ticket a counter has called and not yet closed today (the newest, if an officer
    left an earlier one open): the console after a reload."""
    counters.require_ward(deps, principal, ward_id)
    staff_of(principal, ward_id)
    counters.require_counter(deps, ward_id, counter_id)
    newest = deps.store.newest_called_at_counter(ward_id, counter_id)
    # A ticket called today is newer than any left open on an earlier day.
    if newest is None or newest["day"] != day_of(deps, deps.clock.now()):
        return None
    return {"ticket_id": newest["_id"], "number": newest["number"], "counter_id": counter_id,
            "service_code": newest["service_code"], "priority": newest["priority"], "status": newest["status"],
            "called_at": domain.iso_utc(newest["called_at"])}


# ---------------------------------------------------------------- where a ticket stands
def progress(deps: "Deps", principal: Principal | None, ticket_id: str) -> dict | None:
    """Where a ticket stands, for whoever holds its id (the QR code on the slip): no
    personal data is kept on a ticket. None for an unknown ticket."""
    ticket = deps.store.ticket(ticket_id)
    if ticket is None:
        return None
    service = counters.service(deps, ticket["ward_id"], ticket["service_code"]) or {"name": ticket["service_code"]}
    answer = {
        "ticket_id": ticket["_id"], "number": ticket["number"], "ward_id": ticket["ward_id"],
        "service_code": ticket["service_code"], "service_name": service["name"], "priority": ticket["priority"],
        "status": ticket["status"], "issued_at": domain.iso_utc(ticket["issued_at"]),
        "counter_id": ticket.get("counter_id"), "counter_name": None,
        "waiting_ahead": None, "estimated_wait_minutes": None,
    }
    if ticket.get("counter_id"):
        counter = counters.counter(deps, ticket["ward_id"], ticket["counter_id"])
        answer["counter_name"] = counter["name"] if counter else ticket["counter_id"]
    if ticket["status"] == domain.WAITING and ticket["day"] == day_of(deps, deps.clock.now()):
        ahead = deps.store.count_ahead(ticket)
        answer["waiting_ahead"] = ahead
        answer["estimated_wait_minutes"] = _estimate(deps, ticket["ward_id"], ticket["service_code"], ahead)
    return answer
