"""The rating worker: learns what may be rated from queue's and dossier's events.

The handlers are plain functions of (database, event), so tests call them directly; the
nameko service only wires them to the broker. Each runs once per event (handle_once)."""
from __future__ import annotations

import logging

from pymongo.database import Database

from motcua_common.consumer import ServiceDatabase, event_handler, handle_once
from motcua_common.events import Event

from . import domain, store

log = logging.getLogger(__name__)

SERVICE = "rating"


class ReturnWithoutReceiptCode(Exception):
    """A dossier was returned, but neither the event nor an earlier DossierResultReady
    gives its receipt code (the key citizens rate by). Raised so that the event is retried
    (DossierResultReady may be on its way) and then dead-lettered with this reason."""


def on_ticket_served(db: Database, event: Event) -> str:
    opportunity = domain.ticket_served(event.payload, served_at=domain.parse_instant(event.occurred_at))

    def work(session):
        store.open_opportunity(db, opportunity, session)

    outcome = handle_once(db, SERVICE, event, work)
    log.info("ticket ratable", extra={"ticket_id": opportunity["subject_id"], "ward_id": opportunity["ward_id"],
                                      "outcome": outcome})
    return outcome


def on_dossier_result_ready(db: Database, event: Event) -> str:
    opportunity = domain.dossier_result_ready(event.payload)

    def work(session):
        store.open_opportunity(db, opportunity, session)

    outcome = handle_once(db, SERVICE, event, work)
    log.info("dossier awaits its return", extra={"dossier_id": event["dossier_id"], "ward_id": event["ward_id"],
                                                 "outcome": outcome})
    return outcome


def on_dossier_status_changed(db: Database, event: Event) -> str:
    if event["to_status"] != domain.RETURNED:
        return "ignored"  # only the return matters here; acknowledged, nothing to record
    changes = domain.dossier_returned(event.payload, returned_at=domain.parse_instant(event.occurred_at))

    def work(session):
        receipt_code = event["receipt_code"] or store.receipt_code_of(db, event["dossier_id"], session)
        if not receipt_code:
            raise ReturnWithoutReceiptCode(f"dossier {event['dossier_id']}: no receipt code known")
        # What DossierResultReady would have recorded, in case it has not arrived (yet).
        known = domain.dossier_result_ready({**event.payload, "receipt_code": receipt_code})
        store.open_returned_dossier(db, receipt_code, known, changes, session)

    outcome = handle_once(db, SERVICE, event, work)
    log.info("dossier ratable", extra={"dossier_id": event["dossier_id"], "ward_id": event["ward_id"],
                                       "outcome": outcome})
    return outcome


class RatingService:
    name = SERVICE
    db = ServiceDatabase(SERVICE)

    @event_handler("TicketServed")
    def ticket_served(self, event: Event) -> str:
        return on_ticket_served(self.db, event)

    @event_handler("DossierResultReady")
    def dossier_result_ready(self, event: Event) -> str:
        return on_dossier_result_ready(self.db, event)

    @event_handler("DossierStatusChanged")
    def dossier_status_changed(self, event: Event) -> str:
        return on_dossier_status_changed(self.db, event)


SERVICES = [RatingService]
