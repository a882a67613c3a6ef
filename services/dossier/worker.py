"""The dossier worker (nameko): only wiring. It keeps the citizens projection from
CitizenRegistered (citizens.py), the wards identity opens (WardOpened, wards.py) and the
sessions identity ended early (SessionsRevoked, motcua_common.revocations); answers
identity's SMS status and rating questions and notify's question before it texts a citizen about a
step (dossiers.py); and announces overdue dossiers on a timer — the same use cases, with
the same Deps (build_deps), as the API."""
from __future__ import annotations

import logging

import eventlet
from kombu import Exchange, Queue
from nameko.extensions import DependencyProvider
from nameko.messaging import consume
from motcua_common.nameko_rpc import rpc
from nameko.timer import timer

from motcua_common import rpc as motcua_rpc
from motcua_common.config import Settings
from motcua_common.consumer import event_handler, handle_once
from motcua_common.mongo import connect, service_database
from motcua_common.revocations import on_sessions_revoked

from . import citizens, counter_records, dossiers, office_filings, scorecards, wards
from .deps import SERVICE, Deps, build_deps

log = logging.getLogger(__name__)

# Due dates are whole days: looking every few minutes announces a dossier soon after the
# ward's midnight, and a worker that was down catches up as soon as it starts (eager).
OVERDUE_CHECK_SECONDS = 300
# Dossiers a ward office took while cut off (office_filings.py), as its shovel delivers them.
OFFICE_FILINGS = Queue(office_filings.FILINGS_QUEUE,
                       Exchange(office_filings.FILINGS_EXCHANGE, type="topic", durable=True),
                       routing_key="#", durable=True, queue_arguments={"x-queue-type": "quorum"})
FILING_RETRY_SECONDS = 5


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

    @rpc
    def for_sms(self, dossier_id: str, event_id: str) -> dict | None:
        return dossiers.for_sms(self.deps, dossier_id, event_id)

    @rpc
    def latest_ratable(self, citizen_id: str) -> dict | None:
        """identity's question when a citizen answers the result-ready SMS with 1, 2 or 3:
        {dossier_id, receipt_code, ward_id, at} of their latest dossier to rate, or None."""
        return dossiers.latest_ratable(self.deps, citizen_id)

    @event_handler("CitizenRegistered")
    def on_citizen_registered(self, event):
        # First the counter record waiting for this citizen, if any (asks identity; a
        # failure is retried with the event, and claiming twice changes nothing), then the
        # projection, once.
        counter_records.on_registered(self.deps, event["citizen_id"])
        return handle_once(self.deps.db, "dossier", event, citizens.on_registered(self.deps, event))

    @consume(OFFICE_FILINGS, requeue_on_error=True)
    def on_office_filing(self, filing):
        # A dossier a citizen handed in is never dropped: what can never be accepted is kept
        # with its reason (accept_or_keep); anything else — identity not answering, the
        # database restarting, a fault of ours — puts the message back, after a pause so that
        # it is not a tight loop.
        try:
            return office_filings.accept_or_keep(self.deps, filing)
        except motcua_rpc.RpcUnavailable:
            log.warning("office filing waits for identity")
            eventlet.sleep(FILING_RETRY_SECONDS)
            raise
        except Exception:
            log.exception("office filing not accepted yet")
            eventlet.sleep(FILING_RETRY_SECONDS)
            raise

    @event_handler("WardOpened")
    def on_ward_opened(self, event):
        return wards.on_ward_opened(self.deps, None, event)

    @event_handler("RatingGiven")
    def on_rating_given(self, event):
        return scorecards.on_rating_given(self.deps, None, event)

    @event_handler("SessionsRevoked")
    def on_sessions_revoked(self, event):
        return on_sessions_revoked(self.deps.db, SERVICE, event)


SERVICES = [DossierWorker]
