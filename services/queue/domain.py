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
from typing import Iterable
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


# ---------------------------------------------------------------- who is called next
@dataclass(frozen=True)
class WaitingTicket:
    ticket_id: str
    service_code: str
    priority: str
    queued_at: datetime       # when it joined the queue; a transfer keeps it
    sequence: int             # its number within the service and day
    transferred_to: str | None = None  # a counter that alone may call it


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


# ---------------------------------------------------------------- time
def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def to_millis(instant: datetime) -> datetime:
    """The precision the database keeps, so what we compare is what we stored."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def iso_utc(instant: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, the contract's time format."""
    return instant.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
