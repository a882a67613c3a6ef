"""The dossier worker (nameko): keeps the citizens projection from CitizenRegistered, and
announces overdue dossiers (a timer).

The projection holds what adoption figures need (ward, channel, age band, when), never a
name or a number; it is rebuilt from events, so it may lag identity by a moment."""
from __future__ import annotations

import logging
from datetime import date, datetime

from nameko.rpc import rpc
from nameko.timer import timer

from motcua_common.consumer import ServiceDatabase, SettingsProvider, event_handler, handle_once

from . import domain, store
from .clock import SystemClock

log = logging.getLogger(__name__)

# Due dates are whole days: looking every few minutes announces a dossier soon after the
# ward's midnight, and a worker that was down catches up as soon as it starts (eager).
OVERDUE_CHECK_SECONDS = 300


class DossierWorker:
    name = "dossier"
    db = ServiceDatabase("dossier")

    settings = SettingsProvider()

    @timer(interval=OVERDUE_CHECK_SECONDS, eager=True)
    def announce_overdue(self):
        """One DossierOverdue per dossier and due date, through the outbox. Several workers
        may run this at once: the conditional write lets exactly one announce each."""
        clock = SystemClock(self.settings.timezone)
        announced = announce_overdue_dossiers(self.db, clock.today(), clock.now())
        if announced:
            log.info("overdue dossiers announced", extra={"count": announced})

    @rpc
    def status_for_sms(self, receipt_code: str, phone_last4: str) -> dict | None:
        """identity's `TT <receipt code>` answer: the status, only when the asking phone ends
        in the digits registered on the dossier (the same rule as the public lookup)."""
        import hmac

        dossier = store.find_by_receipt_code(self.db, str(receipt_code or "").strip().upper())
        expected = (dossier or {}).get("phone_last4") or "----"
        if dossier is None or not hmac.compare_digest(expected.encode(), str(phone_last4 or "").encode()):
            return None
        return {"status": dossier["status"], "due_date": dossier["due_date"], "ward_id": dossier["ward_id"]}

    @event_handler("CitizenRegistered")
    def on_citizen_registered(self, event):
        if not event["citizen_id"]:
            # Nothing to project; acknowledged (and remembered) rather than retried forever.
            return handle_once(self.db, "dossier", event, lambda session: None)
        citizen = {
            "citizen_id": event["citizen_id"],
            "ward_id": event["ward_id"] or event.ward_id,
            "channel": event["channel"],
            "age_band": event["age_band"],
            "registered_at": _moment(event.occurred_at),
        }
        return handle_once(self.db, "dossier", event, lambda session: store.record_citizen(self.db, session, citizen))


def announce_overdue_dossiers(db, today: date, now: datetime) -> int:
    announced = 0
    for dossier in store.overdue_dossiers(db, today):
        if domain.needs_overdue_notice(dossier["status"], date.fromisoformat(dossier["due_date"]), today,
                                       dossier.get("overdue_noticed_for")):
            announced += store.announce_overdue(db, dossier, now)
    return announced


def _moment(iso: str) -> datetime | str:
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return iso  # kept as sent rather than losing the event over a timestamp


SERVICES = [DossierWorker]
