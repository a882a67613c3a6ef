"""The queue's rules, free of Flask, nameko and pymongo.

A ticket is taken at the kiosk for one service of a ward (Hộ tịch, Chứng thực, ...), waits,
is called to a counter, and is then served, skipped (the citizen did not come), recalled
(announced again) or transferred to another counter. Numbers are the service prefix and a
sequence that restarts every local day: A001, A002, ...
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

# ---------------------------------------------------------------- vocabulary
WAITING, CALLED, SERVED, SKIPPED = "waiting", "called", "served", "skipped"

PRIORITY, NORMAL = "priority", "normal"
PRIORITIES = (NORMAL, PRIORITY)
# Lower is called first. Priority is for the elderly, people with disabilities and
# pregnant women (R10); it only jumps the queue of its own service.
PRIORITY_RANK = {PRIORITY: 0, NORMAL: 1}

SERVE, SKIP, RECALL, TRANSFER = "serve", "skip", "recall", "transfer"
ACTIONS = (SERVE, SKIP, RECALL, TRANSFER)

DEFAULT_SERVICE_MINUTES = 5
RECENT_SERVICE_SAMPLE = 20  # served tickets the wait estimate learns from


# ---------------------------------------------------------------- numbering
def local_day(instant: datetime, timezone_name: str) -> str:
    """The ward's calendar day (YYYY-MM-DD) at `instant`: numbers restart at local midnight."""
    return instant.astimezone(ZoneInfo(timezone_name)).date().isoformat()


def ticket_number(prefix: str, sequence: int) -> str:
    """`A` and 7 -> `A007`. Past 999 the number simply grows (A1000): a busy day must
    never wrap round to a number already handed out."""
    if sequence < 1:
        raise ValueError("ticket sequences start at 1")
    return f"{prefix}{sequence:03d}"


def sequence_key(ward_id: str, service_code: str, day: str) -> str:
    """The key of a service's day counts: numbers restart with each (ward, service, day)."""
    return f"{ward_id}:{service_code}:{day}"


def counts_by_rank(counts: Mapping, kind: str) -> dict[int, int]:
    """A day-counts document's `issued_r<rank>` (or `called_r<rank>`) fields, by rank."""
    return {rank: counts.get(f"{kind}_r{rank}", 0) for rank in PRIORITY_RANK.values()}


def new_ticket(ticket_id: str, ward_id: str, day: str, service: Mapping, sequence: int, priority: str,
               now: datetime, queued_at: datetime | None = None) -> dict:
    """A ticket just issued: waiting, numbered within its service and day. Its place in the
    line (`queued_at`) is `now`, or the service's latest place if that is later (another
    process's clock ahead of ours): never before an earlier number."""
    return {
        "_id": ticket_id,
        "ward_id": ward_id,
        "day": day,
        "service_code": service["code"],
        "number": ticket_number(service["prefix"], sequence),
        "sequence": sequence,
        "priority": priority,
        "priority_rank": PRIORITY_RANK[priority],
        "status": WAITING,
        "issued_at": now,
        "queued_at": max(now, queued_at) if queued_at is not None else now,
        "transferred_to": None,
        "counter_id": None,
        "called_at": None,
        "first_called_at": None,
    }


# ---------------------------------------------------------------- who is called next
@dataclass(frozen=True)
class WaitingTicket:
    ticket_id: str
    service_code: str
    priority: str
    queued_at: datetime       # when it joined the queue; a transfer keeps it
    sequence: int             # its number within the service and day
    transferred_to: str | None = None  # a counter that alone may call it


def waiting_ticket(record: Mapping) -> WaitingTicket:
    """A stored waiting ticket as the calling rules see it."""
    return WaitingTicket(
        ticket_id=record["_id"], service_code=record["service_code"], priority=record["priority"],
        queued_at=record["queued_at"], sequence=record["sequence"], transferred_to=record.get("transferred_to"))


def call_order(ticket: WaitingTicket) -> tuple:
    """Priority tickets first, then whoever has waited longest. The sequence breaks ties
    inside one service (two tickets issued in the same millisecond keep number order)."""
    return (PRIORITY_RANK[ticket.priority], ticket.queued_at, ticket.sequence, ticket.ticket_id)


def may_call(ticket: WaitingTicket, counter_id: str, service_codes: Iterable[str]) -> bool:
    """A transferred ticket waits for the counter it was sent to; any other ticket for any
    counter that serves its service."""
    if ticket.transferred_to is not None:
        return ticket.transferred_to == counter_id
    return ticket.service_code in set(service_codes)


def choose_next(waiting: Iterable[WaitingTicket], counter_id: str, service_codes: Iterable[str]) -> WaitingTicket | None:
    """The ticket a counter calls next, across all the services it serves: fair by waiting
    time, so a counter serving A and B does not starve B while A is busy."""
    codes = set(service_codes)
    eligible = [t for t in waiting if may_call(t, counter_id, codes)]
    return min(eligible, key=call_order, default=None)


# ---------------------------------------------------------------- the wait a kiosk prints
def waiting_ahead_at_issue(rank: int, issued_by_rank: dict[int, int], first_called_by_rank: dict[int, int]) -> int:
    """People ahead of a ticket just issued, from its service's day counts rather than a
    scan of the queue: every ticket of the same or a more urgent rank issued before it and
    not yet called. A waiting ticket leaves the line only by being called (a transferred
    one was called first), so issued minus first-called is who still waits; the ticket
    itself is among the issued and is taken off."""
    ahead = sum(issued_by_rank.get(r, 0) - first_called_by_rank.get(r, 0)
                for r in PRIORITY_RANK.values() if r <= rank)
    return max(ahead - 1, 0)


def estimate_wait_minutes(people_ahead: int, recent_service_seconds: Iterable[float], counters_serving: int,
                          default_minutes: int = DEFAULT_SERVICE_MINUTES) -> int:
    """Minutes until this ticket is likely called: the mean recent service time, times the
    people ahead, shared among the counters that serve the service. Rounded up, so the
    slip never promises less than the truth. No history yet: `default_minutes` each."""
    if people_ahead <= 0:
        return 0
    samples = [s for s in recent_service_seconds if s is not None and s >= 0]
    mean_seconds = sum(samples) / len(samples) if samples else default_minutes * 60
    # A service no counter serves yet still gets an estimate, as if one counter did.
    seconds = mean_seconds * people_ahead / max(counters_serving, 1)
    return math.ceil(seconds / 60)


# ---------------------------------------------------------------- what an officer may do
class InvalidTransition(Exception):
    def __init__(self, status: str, action: str):
        super().__init__(f"cannot {action} a ticket that is {status}")
        self.status, self.action = status, action


# (status, action) -> the status after it. Only a called ticket is acted on: it is the
# one standing (or not) in front of the officer.
_TRANSITIONS = {
    (CALLED, SERVE): SERVED,
    (CALLED, SKIP): SKIPPED,
    (CALLED, RECALL): CALLED,      # announced again on the board
    (CALLED, TRANSFER): WAITING,   # waits again, for the counter it was sent to
}


def next_status(status: str, action: str) -> str:
    try:
        return _TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(status, action) from None


def allowed_actions(status: str) -> list[str]:
    return [action for (s, action) in _TRANSITIONS if s == status]


@dataclass(frozen=True)
class ServiceTimes:
    wait_seconds: int      # issued -> first called: the citizen's wait in the hall
    service_seconds: int   # last called -> served: time at the counter


def service_times(issued_at: datetime, first_called_at: datetime, called_at: datetime,
                  served_at: datetime) -> ServiceTimes:
    """Durations of a served ticket. A recall or a transfer moves `called_at` but not the
    first call, so the hall wait is counted once and the counter time is the last one."""
    return ServiceTimes(
        wait_seconds=max(0, round((first_called_at - issued_at).total_seconds())),
        service_seconds=max(0, round((served_at - called_at).total_seconds())),
    )


@dataclass(frozen=True)
class ActionChange:
    """What an officer's action sets (and counts up) on a called ticket."""
    status: str
    fields: dict           # $set, after the status
    increments: dict       # $inc ({} for none)
    times: ServiceTimes | None = None   # for a serve


def action_change(ticket: Mapping, action: str, now: datetime, officer_id: str,
                  target_counter_id: str | None = None) -> ActionChange:
    """Serve, skip, recall or transfer a called ticket; raises InvalidTransition when the
    ticket's status does not allow the action."""
    status = next_status(ticket["status"], action)
    fields: dict = {"status": status}
    increments: dict = {}
    times = None
    if action == SERVE:
        times = service_times(ticket["issued_at"], ticket["first_called_at"], ticket["called_at"], now)
        fields.update({"served_at": now, "officer_id": officer_id,
                       "wait_seconds": times.wait_seconds, "service_seconds": times.service_seconds})
    elif action == SKIP:
        fields.update({"skipped_at": now, "officer_id": officer_id})
    elif action == RECALL:
        fields["called_at"] = now
        increments = {"recalls": 1}
    elif action == TRANSFER:
        # Back in the queue with its original queued_at: it keeps its place in time.
        fields.update({"transferred_to": target_counter_id, "transferred_from": ticket["counter_id"],
                       "counter_id": None, "called_at": None})
    return ActionChange(status, fields, increments, times)


# ---------------------------------------------------------------- kiosk pairing
def pairing_expired(expires_at: datetime, now: datetime) -> bool:
    """A pairing code past its time (the TTL monitor runs once a minute; an expired code is
    refused at once)."""
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=now.tzinfo)
    return expires_at <= now


# ---------------------------------------------------------------- time
def to_millis(instant: datetime) -> datetime:
    """The precision the database keeps, so what we compare is what we stored."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def as_utc(instant: datetime) -> datetime:
    """A time read back from the database as aware UTC (a client without tz_aware reads it
    naive)."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=timezone.utc)


def iso_utc(instant: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, the contract's time format."""
    return instant.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
