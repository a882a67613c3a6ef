"""The queue's events, built here and nowhere else: TicketIssued, TicketCalled and
TicketServed envelopes (motcua_common.events.new_event, checked against proto/). The use
cases hand them to the store, which commits them with the change that caused them."""
from __future__ import annotations

from typing import Mapping

from motcua_common.events import new_event

from . import domain


def ticket_issued(ticket: Mapping) -> dict:
    return new_event("TicketIssued", ticket["ward_id"], {
        "ticket_id": ticket["_id"], "number": ticket["number"], "ward_id": ticket["ward_id"],
        "service_code": ticket["service_code"], "priority": ticket["priority"],
    })


def ticket_called(ticket: Mapping) -> dict:
    """A call, or a recall (announced again on the board)."""
    return new_event("TicketCalled", ticket["ward_id"], {
        "ticket_id": ticket["_id"], "number": ticket["number"], "ward_id": ticket["ward_id"],
        "counter_id": ticket["counter_id"], "service_code": ticket["service_code"],
        "called_at": domain.iso_utc(ticket["called_at"]),
    })


def ticket_served(ticket: Mapping, officer_id: str, times: domain.ServiceTimes) -> dict:
    return new_event("TicketServed", ticket["ward_id"], {
        "ticket_id": ticket["_id"], "ward_id": ticket["ward_id"], "counter_id": ticket["counter_id"],
        "officer_id": officer_id, "wait_seconds": times.wait_seconds,
        "service_seconds": times.service_seconds, "service_code": ticket["service_code"],
        "number": ticket["number"],
    })


def after_action(ticket: Mapping, action: str, change: domain.ActionChange, now, officer_id: str) -> list[dict]:
    """What an officer's action tells the others: a serve, a recall; skip and transfer are
    the queue's own business."""
    if action == domain.SERVE:
        return [ticket_served(ticket, officer_id, change.times)]
    if action == domain.RECALL:
        return [ticket_called({**ticket, "called_at": now})]
    return []
