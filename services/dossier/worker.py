"""The dossier worker (nameko): keeps the citizens projection from CitizenRegistered.

The projection holds what adoption figures need (ward, channel, age band, when), never a
name or a number; it is rebuilt from events, so it may lag identity by a moment."""
from __future__ import annotations

from datetime import datetime

from motcua_common.consumer import ServiceDatabase, event_handler, handle_once

from . import store


class DossierWorker:
    name = "dossier"
    db = ServiceDatabase("dossier")

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


def _moment(iso: str) -> datetime | str:
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return iso  # kept as sent rather than losing the event over a timestamp


SERVICES = [DossierWorker]
