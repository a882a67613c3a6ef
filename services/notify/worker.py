"""notify's nameko worker: turns dossier events into pending SMS, and sends what is due;
keeps the sessions identity ended early (SessionsRevoked), which its API refuses.

Two halves that meet only in the database:
  * event handlers store one pending notification per (event, template, citizen);
  * a timer claims due notifications and sends them (sender.py), asking identity for the
    phone at send time, so that no phone number travels in an event or waits in a queue.

Only nameko wiring lives here: the handlers call the use cases (intake.py, sender.py,
notifications.py) with the deps made once per process (deps.build_deps).
"""
from __future__ import annotations

import logging
import time

import eventlet
from nameko.exceptions import MethodNotFound, RemoteError, UnknownService
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from motcua_common.config import Settings
from motcua_common.consumer import event_handler
from motcua_common.nameko_rpc import RpcProxy, rpc
from motcua_common.revocations import on_sessions_revoked

from . import digest, domain
from .deps import Deps, build_deps
from .intake import accept_event, accept_reply
from .notifications import expire_unreceipted
from .sender import ContactUnavailable, DossierUnavailable, sender_for

log = logging.getLogger(__name__)

# The sender looks for due messages at least this often (retries, held chain messages,
# broadcasts made by the API process) ...
SEND_POLL_SECONDS = 1.0
# ... and within this long of a handler in this worker storing one (wake()), without a
# database query per tick: a citizen's "dossier received" should not wait for the poll.
SEND_WAKE_SECONDS = 0.1


class NotifyDependencies(DependencyProvider):
    """notify's deps (deps.py) with the SMS gateways (routing.py) and the mail server,
    made once per worker process: rate limits and failover state live as long as the
    worker, and so does its one database client."""

    def setup(self):
        settings = self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()
        # The worker verifies no token: it is called over the broker, never with a bearer.
        self.deps: Deps = build_deps(settings, outbound=True, verifier=None)
        digest.ensure_indexes(self.deps.db)
        self._woken, self._last_look = False, 0.0

    def stop(self):
        self.deps.gateway.close()
        self.deps.db.client.close()

    def get_dependency(self, worker_ctx):
        return self

    def wake(self) -> None:
        """Something was stored that may be due now: the next tick looks."""
        self._woken = True

    def time_to_look(self) -> bool:
        """Whether this tick queries for due messages: when woken, or when the poll is due.
        The flag drops before the look, so a wake during a send pass makes one more."""
        now = time.monotonic()
        if not self._woken and now - self._last_look < SEND_POLL_SECONDS:
            return False
        self._woken, self._last_look = False, now
        return True


class IdentityContacts:
    """citizen_id -> identity's contact answer, over RPC, within a time limit.

    nameko's RPC waits forever by default; a sender stuck on a silent identity would stop
    every other message, so a slow answer counts as "unavailable" and is retried later."""

    def __init__(self, identity, timeout_seconds: float):
        self.identity, self.timeout = identity, timeout_seconds

    def __call__(self, citizen_id: str) -> dict | None:
        try:
            with eventlet.Timeout(self.timeout):
                return self.identity.citizen_contact.call_async(citizen_id).result()
        except eventlet.Timeout:
            raise ContactUnavailable(f"no answer in {self.timeout:.0f} s") from None
        except UnknownService:
            raise ContactUnavailable("identity is not running") from None
        except RemoteError as exc:
            raise ContactUnavailable(f"identity failed: {exc.exc_type}") from None


class DossierDetails:
    """(dossier_id, event_id) -> dossier's for_sms answer (the step's note, the procedure's
    short name, whether the result is online), over RPC, within a time limit: like
    IdentityContacts, a silent dossier makes the message wait, never the sender."""

    def __init__(self, dossier, timeout_seconds: float):
        self.dossier, self.timeout = dossier, timeout_seconds

    def __call__(self, dossier_id: str, event_id: str) -> dict | None:
        try:
            with eventlet.Timeout(self.timeout):
                return self.dossier.for_sms.call_async(dossier_id, event_id).result()
        except eventlet.Timeout:
            raise DossierUnavailable(f"no answer in {self.timeout:.0f} s") from None
        except UnknownService:
            raise DossierUnavailable("dossier is not running") from None
        except RemoteError as exc:
            raise DossierUnavailable(f"dossier failed: {exc.exc_type}") from None


class LeaderContacts:
    """ward_id -> the ward's leaders' contacts [{officer_id, phone?, email?}], asked of
    identity (`ward_leaders_contacts`) within a time limit. An identity that does not offer
    the question yet answers "nobody known" (the digest is recorded, and logged); a silent
    one makes the digest wait for the next tick."""

    def __init__(self, identity, timeout_seconds: float):
        self.identity, self.timeout = identity, timeout_seconds

    def __call__(self, ward_id: str) -> list[dict]:
        try:
            with eventlet.Timeout(self.timeout):
                return self.identity.ward_leaders_contacts.call_async(ward_id).result() or []
        except eventlet.Timeout:
            raise digest.LeadersUnavailable(f"no answer in {self.timeout:.0f} s") from None
        except UnknownService:
            raise digest.LeadersUnavailable("identity is not running") from None
        except MethodNotFound:
            log.warning("identity does not tell the ward's leaders' contacts (ward_leaders_contacts)")
            return []
        except RemoteError as exc:
            if exc.exc_type == "MethodNotFound":
                log.warning("identity does not tell the ward's leaders' contacts (ward_leaders_contacts)")
                return []
            raise digest.LeadersUnavailable(f"identity failed: {exc.exc_type}") from None


class NotifyService:
    name = "notify"
    identity = RpcProxy("identity")
    dossier = RpcProxy("dossier")
    notify = NotifyDependencies()

    def _accepted(self, outcome: str) -> str:
        if outcome == "processed":
            self.notify.wake()
        return outcome

    @event_handler("DossierSubmitted")
    def on_dossier_submitted(self, event):
        return self._accepted(accept_event(self.notify.deps, None, event))

    @event_handler("DossierStatusChanged")
    def on_dossier_status_changed(self, event):
        return self._accepted(accept_event(self.notify.deps, None, event))

    @event_handler("DossierResultReady")
    def on_dossier_result_ready(self, event):
        return self._accepted(accept_event(self.notify.deps, None, event))

    @event_handler("CitizenRegistered")
    def on_citizen_registered(self, event):
        # Web and counter registrations need no SMS; consumed and acknowledged once.
        return accept_event(self.notify.deps, None, event)

    @event_handler("SessionsRevoked")
    def on_sessions_revoked(self, event):
        return on_sessions_revoked(self.notify.deps.db, "notify", event)

    @event_handler("DossierOverdue")
    def on_dossier_overdue(self, event):
        # Kept for the ward leader's end-of-day digest (digest.py), not texted one by one.
        return digest.record_overdue(self.notify.deps, None, event)

    @timer(interval=60)
    def send_overdue_digests(self):
        """At the end of each working day, each ward's leaders get one digest of its overdue dossiers."""
        deps = self.notify.deps
        if digest.send_digests(deps, None, LeaderContacts(self.identity, deps.options.identity_timeout_seconds)):
            self.notify.wake()

    @rpc(expected_exceptions=domain.ReplyRefused)
    def send_sms_reply(self, to, template, variables, ward_id, key):
        """An SMS reply identity asks for (SMS registration, password change, status
        answers): a command, so the temporary password never travels in an event.

        Returns {"notification_id"}; the same `key` always answers the first one's id and
        never makes a second SMS. Sent by the timer below, like every other message."""
        notification_id = accept_reply(self.notify.deps, None, to, template, variables, ward_id, key)
        self.notify.wake()
        return {"notification_id": notification_id}

    @timer(interval=60)
    def reconcile_receipts(self):
        """Sent messages with no receipt after their validity period become `expired`."""
        expired = expire_unreceipted(self.notify.deps)
        if expired:
            log.info("messages without a delivery receipt marked expired", extra={"count": expired})

    @timer(interval=SEND_WAKE_SECONDS)
    def send_due(self):
        if not self.notify.time_to_look():
            return
        deps = self.notify.deps
        contacts = IdentityContacts(self.identity, deps.options.identity_timeout_seconds)
        details = DossierDetails(self.dossier, deps.options.identity_timeout_seconds)
        sender = sender_for(deps, contacts, details)
        # Several sending loops side by side, so that one slow gateway call does not hold
        # up every other message; claims are atomic, so none is taken twice.
        pool = eventlet.GreenPool(deps.options.concurrency)
        for _ in range(deps.options.concurrency):
            pool.spawn_n(sender.send_due)
        pool.waitall()


SERVICES = [NotifyService]
