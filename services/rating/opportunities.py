"""Use cases of what may be rated, learnt from queue's and dossier's events: a served
ticket, a dossier whose result is ready, a returned dossier. Each runs once per event; the
worker only wires them to the broker, and tests call them directly. Opening an opportunity
is one `$setOnInsert` upsert (the first event about a subject stands), idempotent by itself,
so it runs without a transaction (handle_idempotent); a return's reads and writes keep
theirs (handle_once)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from motcua_common.auth import Principal
from motcua_common.consumer import handle_idempotent, handle_once
from motcua_common.events import Event

from . import domain, store

if TYPE_CHECKING:
    from .deps import Deps

# The log lines keep the logger they have always been written under.
log = logging.getLogger("motcua_rating.worker")

SERVICE = "rating"


class ReturnWithoutReceiptCode(Exception):
    """A dossier was returned, but neither the event nor an earlier DossierResultReady
    gives its receipt code (the key citizens rate by). Raised so that the event is retried
    (DossierResultReady may be on its way) and then dead-lettered with this reason."""


def on_ticket_served(deps: "Deps", principal: Principal | None, event: Event) -> str:
    opportunity = domain.ticket_served(event.payload, served_at=domain.parse_instant(event.occurred_at))

    outcome = handle_idempotent(deps.db, SERVICE, event,
                                lambda: store.open_opportunity(deps.db, opportunity, deps.clock.now()))
    log.info("ticket ratable", extra={"ticket_id": opportunity["subject_id"], "ward_id": opportunity["ward_id"],
                                      "outcome": outcome})
    return outcome


def on_dossier_result_ready(deps: "Deps", principal: Principal | None, event: Event) -> str:
    opportunity = domain.dossier_result_ready(event.payload)

    outcome = handle_idempotent(deps.db, SERVICE, event,
                                lambda: store.open_opportunity(deps.db, opportunity, deps.clock.now()))
    log.info("dossier awaits its return", extra={"dossier_id": event["dossier_id"], "ward_id": event["ward_id"],
                                                 "outcome": outcome})
    return outcome


def on_dossier_status_changed(deps: "Deps", principal: Principal | None, event: Event) -> str:
    if event["to_status"] != domain.RETURNED:
        return "ignored"  # only the return matters here; acknowledged, nothing to record
    changes = domain.dossier_returned(event.payload, returned_at=domain.parse_instant(event.occurred_at))

    def work(session):
        receipt_code = event["receipt_code"] or store.receipt_code_of(deps.db, event["dossier_id"], session)
        if not receipt_code:
            raise ReturnWithoutReceiptCode(f"dossier {event['dossier_id']}: no receipt code known")
        # What DossierResultReady would have recorded, in case it has not arrived (yet).
        known = domain.dossier_result_ready({**event.payload, "receipt_code": receipt_code})
        store.open_returned_dossier(deps.db, receipt_code, known, changes, deps.clock.now(), session)

    outcome = handle_once(deps.db, SERVICE, event, work)
    log.info("dossier ratable", extra={"dossier_id": event["dossier_id"], "ward_id": event["ward_id"],
                                       "outcome": outcome})
    return outcome
