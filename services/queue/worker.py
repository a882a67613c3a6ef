"""The queue worker: nameko wiring only. It learns of wards identity opens
(wards.on_ward_opened), from dossier which day each citizen returns for a result
(appointments.record_submitted), and of sessions ended early (SessionsRevoked, kept for
every request's token check) — each through the use case any caller would use."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from motcua_common.config import Settings
from motcua_common.consumer import event_handler
from motcua_common.events import Event
from motcua_common.revocations import on_sessions_revoked

from . import appointments, wards
from .deps import Deps, build_deps


class QueueDeps(DependencyProvider):
    """The queue's deps (deps.build_deps), built once per worker container; the worker
    never reads a kiosk cookie, so it goes without device keys."""

    def setup(self):
        settings = self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()
        self.deps = build_deps(settings, devices=None)

    def stop(self):
        self.deps.db.client.close()

    def get_dependency(self, worker_ctx) -> Deps:
        return self.deps


class QueueWorker:
    name = "queue"
    deps = QueueDeps()

    @event_handler("DossierSubmitted")
    def on_dossier_submitted(self, event: Event) -> str:
        return appointments.record_submitted(self.deps, None, event)

    @event_handler("WardOpened")
    def on_ward_opened(self, event: Event) -> str:
        return wards.on_ward_opened(self.deps, None, event)

    @event_handler("SessionsRevoked")
    def on_sessions_revoked(self, event: Event) -> str:
        return on_sessions_revoked(self.deps.db, "queue", event)


SERVICES = [QueueWorker]
