"""The queue worker: nameko wiring only. It learns of wards identity opens
(wards.on_ward_opened), from dossier which day each citizen returns for a result
(appointments.record_submitted), and of sessions ended early (SessionsRevoked, kept for
every request's token check) — each through the use case any caller would use."""
from __future__ import annotations


from motcua_common.deps import deps_provider
from motcua_common.consumer import event_handler
from motcua_common.events import Event
from motcua_common.revocations import on_sessions_revoked

from . import activity, appointments, wards
from .deps import build_deps


class QueueWorker:
    name = "queue"
    # The queue's Deps, once per worker process; a worker never reads a kiosk cookie, so it
    # goes without device keys.
    deps = deps_provider(lambda settings: build_deps(settings, devices=None))()

    @event_handler("DossierSubmitted")
    def on_dossier_submitted(self, event: Event) -> str:
        return appointments.record_submitted(self.deps, None, event)

    @event_handler("WardOpened")
    def on_ward_opened(self, event: Event) -> str:
        return wards.on_ward_opened(self.deps, None, event)

    # Every ward's tickets, the offices' included (their events come up the uplink), for the
    # centre's daily activity (activity.py).
    @event_handler("TicketIssued")
    def on_ticket_issued(self, event: Event) -> str:
        return activity.on_ticket_event(self.deps, None, event)

    @event_handler("TicketCalled")
    def on_ticket_called(self, event: Event) -> str:
        return activity.on_ticket_event(self.deps, None, event)

    @event_handler("TicketServed")
    def on_ticket_served(self, event: Event) -> str:
        return activity.on_ticket_event(self.deps, None, event)

    @event_handler("SessionsRevoked")
    def on_sessions_revoked(self, event: Event) -> str:
        return on_sessions_revoked(self.deps.db, "queue", event)


SERVICES = [QueueWorker]
