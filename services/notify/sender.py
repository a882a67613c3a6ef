"""The sender: takes due notifications one at a time, finds the phone, renders the text
and hands it to the gateway; then records sent, a later retry, or failed.

Works with any gateway and any contact lookup, so it runs inside the nameko worker (with
identity over RPC) and in tests (with a plain function).

Knobs, read from the environment by SendOptions.from_env (defaults in brackets):
  SMS_RETRY_WINDOW_SECONDS         how long a message is retried before it fails [600]
  SMS_UNACCENTED                   send Vietnamese without diacritics, as GSM-7 [false]
  NOTIFY_BACKOFF_BASE_SECONDS      first wait after a failed try, doubled each time [5]
  NOTIFY_BACKOFF_MAX_SECONDS       longest wait between tries [120]
  NOTIFY_GATEWAY_TIMEOUT_SECONDS   how long to wait for the SMS gateway [10]
  NOTIFY_IDENTITY_TIMEOUT_SECONDS  how long to wait for identity's answer [5]
  NOTIFY_SEND_LEASE_SECONDS        how long a claimed message is held by one sender [60]
                                   (never less than both timeouts and a margin)
  NOTIFY_SEND_CONCURRENCY          senders side by side in one worker [4]
  NOTIFY_SMS_SEGMENT_PRICE         what one SMS segment costs (VND), for the cost metric [0]
  NOTIFY_CHAIN_HOLD_SECONDS        how long a chain's one "submitted" SMS waits for the
                                   chain's other receipt codes [2]
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from opentelemetry.trace import SpanKind
from pymongo.database import Database
from pymongo.errors import PyMongoError

from motcua_common import metrics, tracing
from motcua_common.clock import SystemClock
from motcua_common.config import Settings

from . import domain, store, telemetry
from .gateways import OutboundSms
from .mail import SUBJECT, ConsoleMail, OutboundEmail
from .routing import as_pool

log = logging.getLogger(__name__)


class ContactUnavailable(Exception):
    """identity did not answer (down, slow, or the broker is): try again later."""


# citizen_id -> {citizen_id, phone, phone_last4, ward_id} or None; may raise ContactUnavailable
ContactLookup = Callable[[str], "dict | None"]


class DossierUnavailable(Exception):
    """dossier did not answer (down, slow, or the broker is): try again later."""


# (dossier_id, event_id) -> dossier's for_sms answer {procedure, e_result, note, ...} or
# None; may raise DossierUnavailable
DossierLookup = Callable[[str, str], "dict | None"]


@dataclass(frozen=True)
class SendOptions:
    retry: domain.RetryPolicy = domain.RetryPolicy()
    unaccented: bool = False
    gateway_timeout_seconds: float = 10.0
    identity_timeout_seconds: float = 5.0
    lease_seconds: float = 60.0
    batch_size: int = 100
    concurrency: int = 4
    segment_price: float = 0.0   # what the operator bills a segment (VND), for the cost metric
    chain_hold_seconds: float = 2.0

    @classmethod
    def from_env(cls, settings: Settings, env: dict | None = None) -> "SendOptions":
        env = os.environ if env is None else env
        gateway_timeout = float(env.get("NOTIFY_GATEWAY_TIMEOUT_SECONDS", "10"))
        identity_timeout = float(env.get("NOTIFY_IDENTITY_TIMEOUT_SECONDS", "5"))
        # A lease shorter than one try would let a second sender take a message that is
        # still being sent.
        lease = max(float(env.get("NOTIFY_SEND_LEASE_SECONDS", "60")), gateway_timeout + identity_timeout + 5)
        return cls(
            retry=domain.RetryPolicy(
                window_seconds=float(settings.sms_retry_window_seconds),
                base_seconds=float(env.get("NOTIFY_BACKOFF_BASE_SECONDS", "5")),
                max_seconds=float(env.get("NOTIFY_BACKOFF_MAX_SECONDS", "120")),
            ),
            unaccented=settings.sms_unaccented,
            gateway_timeout_seconds=gateway_timeout,
            identity_timeout_seconds=identity_timeout,
            lease_seconds=lease,
            concurrency=max(1, int(env.get("NOTIFY_SEND_CONCURRENCY", "4"))),
            segment_price=float(env.get("NOTIFY_SMS_SEGMENT_PRICE", "0")),
            chain_hold_seconds=max(0.0, float(env.get("NOTIFY_CHAIN_HOLD_SECONDS", "2"))),
        )


def sender_for(deps, contacts: ContactLookup, dossiers: DossierLookup | None = None) -> Sender:
    """The sender of notify's deps (deps.py): its database, gateways, mail server, sending
    options and clock; `contacts` is how this caller asks identity for a phone, `dossiers`
    how it asks dossier about a step (its note, whether the result is online)."""
    return Sender(deps.db, deps.gateway, contacts, deps.options, clock=deps.clock.now, mail=deps.mail,
                  dossiers=dossiers)


# How often a sender looks for the Retry-After pauses other workers were given.
PAUSES_READ_EVERY = timedelta(seconds=1)


class Sender:
    """`gateway`: a routing.GatewayPool, or one gateway (used alone, without a limit).
    `mail`: where email goes (mail.py); the notify log when not given."""

    def __init__(self, db: Database, gateway, contacts: ContactLookup, options: SendOptions,
                 clock: Callable[[], datetime] | None = None, rand: Callable[[], float] = random.random,
                 mail=None, dossiers: DossierLookup | None = None):
        self.db, self.pool, self.contacts, self.options = db, as_pool(gateway), contacts, options
        # Without it, nothing is asked: a result is "at the office", a note template fails.
        self.dossiers = dossiers
        self.mail = mail or ConsoleMail()
        self.clock, self.rand = clock or SystemClock().now, rand
        self._pauses_read_at: datetime | None = None

    def send_due(self) -> int:
        """Send what is due, up to one batch; how many were taken."""
        self._learn_pauses()
        taken = 0
        while taken < self.options.batch_size:
            if self.pool.paused_for():
                break   # every gateway asked us to wait (Retry-After): claim nothing until then
            try:
                doc = store.claim_due(self.db, self.clock(), self.options.lease_seconds)
            except PyMongoError as exc:
                log.warning("database unavailable, sending waits: %s", exc.__class__.__name__)
                break
            if doc is None:
                break
            taken += 1
            try:
                self.deliver(doc)
            except Exception as exc:
                log.exception("sending failed unexpectedly", extra=_ids(doc))
                self._after_unexpected(doc, exc)
        return taken

    def _learn_pauses(self) -> None:
        """The Retry-After pauses any worker was given (store.pause_gateway): this one obeys
        them too, and one restarted mid-pause does not hit the gateway early. Read at most
        once a second: the worker's sending loops share one Sender a pass."""
        now = self.clock()
        if self._pauses_read_at is not None and now - self._pauses_read_at < PAUSES_READ_EVERY:
            return
        self._pauses_read_at = now
        try:
            pauses = store.gateway_pauses(self.db, now)
        except PyMongoError:
            return   # the claim that follows meets the outage and waits
        for gateway, until in pauses.items():
            self.pool.pause(gateway, (until - now).total_seconds())

    def _share_pause(self, gateway: str, seconds: float) -> None:
        try:
            store.pause_gateway(self.db, gateway, self.clock() + timedelta(seconds=seconds))
        except PyMongoError:
            log.warning("could not record the gateway's Retry-After; this worker obeys it alone",
                        extra={"gateway": gateway})

    def _after_unexpected(self, doc: dict, exc: Exception) -> None:
        """A bug or an outage mid-send still ends within the retry window. If even this
        write fails, the claim stays until its lease ends and the message is tried again
        then, with the same Idempotency-Key, so the gateway never sends it twice."""
        try:
            self._retry_or_fail(doc, domain.INTERNAL_ERROR, exc.__class__.__name__)
        except Exception:
            log.warning("could not record the failed try; it is retried after the lease", extra=_ids(doc))

    def deliver(self, doc: dict) -> str:
        """One claimed notification: "sent", "retry", "failed" or "lost" (claim taken over)."""
        template, params = doc["template"], doc.get("params") or {}
        if domain.needs_details(template, params):
            # Asked at send time, like the phone: the officer's note never waits in a queue
            # or travels in an event.
            try:
                details = self.dossiers(params["dossier_id"], doc["source_id"]) if self.dossiers else None
            except DossierUnavailable as exc:
                if template in domain.NOTE_TEMPLATES:
                    # What is missing, or why not: the message is nothing without it.
                    return self._retry_or_fail(doc, domain.DOSSIER_UNAVAILABLE, f"dossier: {exc}")
                # "Your result is ready" must not wait for dossier: it goes out plain (without
                # the word that an online copy exists too).
                log.warning("dossier did not answer: the result-ready SMS goes without its details",
                            extra=_ids(doc))
                details = None
            template, params = domain.with_details(template, params, details)
        try:
            text = domain.render(template, params)
        except domain.TemplateError as exc:
            log.error("template cannot be rendered: %s", exc, extra=_ids(doc))
            return self._fail(doc, domain.TEMPLATE_ERROR, str(exc))
        if doc["channel"] == domain.CHANNEL_EMAIL:
            return self._deliver_email(doc, text)

        if doc.get("phone"):
            phone = doc["phone"]
        else:
            try:
                contact = self.contacts(doc["citizen_id"])
            except ContactUnavailable as exc:
                return self._retry_or_fail(doc, domain.IDENTITY_UNAVAILABLE, f"identity: {exc}")
            phone = domain.normalise_phone((contact or {}).get("phone"))
            if phone is None:
                return self._fail(doc, domain.NO_CONTACT)

        body = domain.encode_sms(text, self.options.unaccented)
        # In the trace of what asked for this SMS (store.new_notification kept its traceparent).
        with tracing.continued_span("sms send", doc.get("traceparent"), SpanKind.CLIENT, {
                "motcua.notification_id": doc["_id"], "motcua.ward_id": doc["ward_id"] or "",
                "motcua.template": doc["template"], "motcua.attempt": doc["attempts"],
                "motcua.sms.segments": body.segments}) as span:
            delivery = self.pool.send(OutboundSms(
                id=doc["_id"], to=phone, text=body.text, encoding=body.encoding, segments=body.segments,
                ward_id=doc["ward_id"] or "", template=doc["template"], secret=domain.is_secret(doc["template"]),
            ), pinned=doc.get("pinned_gateway"))
            span.set_attribute("motcua.gateway", delivery.gateway)
            span.set_attribute("motcua.outcome", _outcome_label(delivery.outcome))
            if not delivery.outcome.accepted:
                tracing.mark_failed(span, delivery.outcome.detail or "not accepted")
        outcome = delivery.outcome
        if delivery.held:
            # Never sent: the gateway's Retry-After is not up. Waits that long, on the same terms.
            log.info("sms held back until the gateway's Retry-After", extra={**_ids(doc), "gateway": delivery.gateway})
            return self._retry_or_fail(doc, domain.GATEWAY_UNAVAILABLE, outcome.detail, outcome.retry_after,
                                       doc.get("pinned_gateway"))
        telemetry.GATEWAY_TRIES.labels(delivery.gateway, _outcome_label(outcome)).inc()
        if outcome.accepted:
            if not store.record_sent(self.db, doc, self.clock(), domain.mask_phone(phone), body,
                                     gateway=delivery.gateway, awaits_receipt=delivery.receipts):
                return "lost"
            _count_notification(doc, domain.CHANNEL_SMS, domain.SENT)
            telemetry.count_sent_sms(doc["ward_id"], doc["template"], delivery.gateway, body.segments,
                                     self.options.segment_price)
            log.info("sms sent", extra={**_ids(doc), "attempts": doc["attempts"], "segments": body.segments,
                                        "gateway": delivery.gateway})
            return "sent"
        if outcome.retryable:
            if outcome.retry_after:
                self._share_pause(delivery.gateway, outcome.retry_after)
            # An ambiguous try pins the message to that gateway: only its key dedupes a resend.
            pin = delivery.gateway if outcome.ambiguous else doc.get("pinned_gateway")
            log.info("gateway try failed", extra={**_ids(doc), "gateway": delivery.gateway,
                                                  "error": outcome.detail, "ambiguous": outcome.ambiguous})
            return self._retry_or_fail(doc, domain.GATEWAY_UNAVAILABLE, outcome.detail, outcome.retry_after, pin)
        log.info("gateway refused the message", extra={**_ids(doc), "gateway": delivery.gateway,
                                                       "error": outcome.detail})
        return self._fail(doc, domain.GATEWAY_REJECTED, outcome.detail)

    def _deliver_email(self, doc: dict, text: str) -> str:
        address = doc.get("email")
        outcome = self.mail.send(OutboundEmail(
            id=doc["_id"], to=address, subject=SUBJECT, text=text, ward_id=doc["ward_id"] or "",
            template=doc["template"], secret=domain.is_secret(doc["template"]),
        ))
        if outcome.accepted:
            if not store.record_sent(self.db, doc, self.clock(), domain.mask_email(address), None,
                                     gateway="smtp", awaits_receipt=False):
                return "lost"
            _count_notification(doc, domain.CHANNEL_EMAIL, domain.SENT)
            log.info("email sent", extra={**_ids(doc), "attempts": doc["attempts"]})
            return "sent"
        if outcome.retryable:
            return self._retry_or_fail(doc, domain.GATEWAY_UNAVAILABLE, outcome.detail)
        return self._fail(doc, domain.GATEWAY_REJECTED, outcome.detail)

    def _retry_or_fail(self, doc: dict, reason: str, detail: str, retry_after: float | None = None,
                       pin: str | None = None) -> str:
        now = self.clock()
        at = domain.next_attempt_at(self.options.retry, doc["first_attempt_at"], now, doc["attempts"],
                                    self.rand, retry_after)
        if at is None:
            return self._fail(doc, reason, detail)
        log.warning("notification not sent, will retry", extra={
            **_ids(doc), "attempts": doc["attempts"], "error": detail,
            "retry_in_seconds": round((at - now).total_seconds(), 1)})
        return "retry" if store.schedule_retry(self.db, doc, at, detail, pin) else "lost"

    def _fail(self, doc: dict, reason: str, detail: str = "") -> str:
        if not store.record_failed(self.db, doc, self.clock(), reason, detail):
            return "lost"
        _count_notification(doc, doc["channel"], domain.FAILED)
        log.warning("notification failed", extra={**_ids(doc), "attempts": doc["attempts"], "reason": reason,
                                                  "error": detail})
        return "failed"


def _outcome_label(outcome) -> str:
    if outcome.accepted:
        return "accepted"
    return "retry" if outcome.retryable else "rejected"


def _ids(doc: dict) -> dict:
    """What a log line may say about a notification: opaque ids, never the phone."""
    return {"notification_id": doc["_id"], "ward_id": doc.get("ward_id"), "template": doc.get("template")}


def _count_notification(doc: dict, channel: str, status: str) -> None:
    metrics.NOTIFICATIONS.labels(channel, status).inc()
    metrics.NOTIFICATIONS_BY_WARD.labels(channel, status, doc.get("ward_id") or "").inc()
