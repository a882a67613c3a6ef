"""The queue worker: learns from dossier which day each citizen returns for a result."""
from __future__ import annotations

from motcua_common.consumer import ServiceDatabase, SettingsProvider, event_handler, handle_once
from motcua_common.events import Event

from .store import QueueStore


class QueueWorker:
    name = "queue"
    db = ServiceDatabase("queue")
    settings = SettingsProvider()

    @event_handler("DossierSubmitted")
    def on_dossier_submitted(self, event: Event) -> str:
        store = QueueStore(self.db, self.settings.timezone)
        return handle_once(self.db, "queue", event, lambda session: store.record_appointment(event.payload, session))


SERVICES = [QueueWorker]
