"""The dossier worker (nameko): only wiring. It keeps the citizens projection from
CitizenRegistered (citizens.py), answers identity's SMS status question and announces
overdue dossiers on a timer (dossiers.py) — the same use cases, with the same Deps
(build_deps), as the API."""
from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from motcua_common.config import Settings
from motcua_common.consumer import event_handler, handle_once
from motcua_common.mongo import connect, service_database

from . import citizens, dossiers
from .deps import SERVICE, Deps, build_deps

log = logging.getLogger(__name__)

# Due dates are whole days: looking every few minutes announces a dossier soon after the
# ward's midnight, and a worker that was down catches up as soon as it starts (eager).
OVERDUE_CHECK_SECONDS = 300


class DossierDeps(DependencyProvider):
    """The dossier Deps, built once per worker process on its own database client."""

    def setup(self):
        settings = self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()
        self.client = connect(settings)
        self.deps = build_deps(settings, db=service_database(self.client, settings, SERVICE))

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx) -> Deps:
        return self.deps


class DossierWorker:
    name = "dossier"
    deps: Deps = DossierDeps()

    @timer(interval=OVERDUE_CHECK_SECONDS, eager=True)
    def announce_overdue(self):
        announced = dossiers.announce_overdue(self.deps)
        if announced:
            log.info("overdue dossiers announced", extra={"count": announced})

    @rpc
    def status_for_sms(self, receipt_code: str, phone_last4: str) -> dict | None:
        return dossiers.status_for_sms(self.deps, receipt_code, phone_last4)

    @event_handler("CitizenRegistered")
    def on_citizen_registered(self, event):
        return handle_once(self.deps.db, "dossier", event, citizens.on_registered(self.deps, event))


SERVICES = [DossierWorker]
