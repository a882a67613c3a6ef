"""The queue worker: nameko wiring only. It learns from dossier which day each citizen
returns for a result, through the same use case any caller would use
(appointments.record_submitted)."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from motcua_common.config import Settings
from motcua_common.consumer import event_handler
from motcua_common.events import Event

from . import appointments
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


SERVICES = [QueueWorker]
