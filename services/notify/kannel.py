"""Kannel, the self-hosted SMS gateway a city's short code runs on: smsbox's HTTP `sendsms`
for outgoing messages, its `dlr-url` callbacks for delivery reports.

Settings (environment), read when SMS_GATEWAY=kannel:
  KANNEL_SENDSMS_URL       smsbox's sendsms, e.g. http://kannel:13013/cgi-bin/sendsms
  KANNEL_SENDSMS_USER, KANNEL_SENDSMS_PASSWORD   the sendsms-user of kannel.conf
  KANNEL_DLR_URL           where Kannel reports delivery: notify's
                           .../notify/api/v1/kannel/dlr as Kannel reaches it
  KANNEL_SMSC_ID           send through this smsc group only [any]
  KANNEL_SHORT_CODE        the sender shown on phones [smsbox's global-sender]
  SMS_REPORT_SIGNING_KEY   signs each message's report URL; notify's own, never Kannel's,
                           and neither SMS_INBOUND_TOKEN nor SMS_DELIVERY_TOKEN

The message goes to sendsms as a POST: the text in the body, the account, the number and
the report URL in X-Kannel-* headers, so none of them sits in a request line that a
proxy or smsbox would log.

Kannel calls a dlr-url with a plain GET and no header of ours, so a report cannot carry a
secret without the secret landing in every log that keeps URLs. Each message's report URL
carries instead a signature of that one message id and an expiry (HMAC with
SMS_REPORT_SIGNING_KEY, a key that never leaves notify): a URL read from a log settles at
most that one message, only while it has no final report yet (a final state is never
changed: store.record_receipt) and only until the URL expires (REPORT_URL_LIFETIME).
notify's report route is reached by Kannel on the cluster network, not the public ingress.

sendsms has no Idempotency-Key. A try whose answer was lost (timeout, reset after the
request went out) is "ambiguous" and stays on Kannel (routing.py); its resend could then
reach the phone twice. Kannel runs beside notify, so such a loss is rare; a refused
connection (smsbox or bearerbox down) is not ambiguous and is simply retried."""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode, urlparse

import requests

from . import domain
from .gateways import Outcome, OutboundSms, outcome_for_request_error

# Kannel's dlr-mask bits: 1 delivered to the phone, 2 not delivered to the phone,
# 4 buffered by the SMSC, 8 accepted by the SMSC, 16 refused by the SMSC.
DLR_DELIVERED, DLR_UNDELIVERED, DLR_BUFFERED, DLR_SMSC_ACCEPTED, DLR_SMSC_REJECTED = 1, 2, 4, 8, 16
DLR_MASK = DLR_DELIVERED | DLR_UNDELIVERED | DLR_BUFFERED | DLR_SMSC_ACCEPTED | DLR_SMSC_REJECTED

# sendsms's `coding`: 0 the GSM default alphabet, 2 UCS-2 (Vietnamese with diacritics).
CODING = {domain.GSM7: "0", domain.UCS2: "2"}


def receipt_status(dlr_type: int) -> str | None:
    """Kannel's report type (%d) -> the notification's receipt status; None for a report
    on the way (buffered, accepted by the SMSC): the message stays `sent`."""
    if dlr_type & DLR_DELIVERED:
        return domain.DELIVERED
    if dlr_type & (DLR_UNDELIVERED | DLR_SMSC_REJECTED):
        return domain.UNDELIVERABLE
    return None


# How long a message's report URL is honoured: longer than any validity period a telco
# keeps a message for (SMS_VALIDITY_SECONDS, a day by default), so every real report
# arrives within it; past it the URL is worth nothing to whoever copied it from a log.
REPORT_URL_LIFETIME = 7 * 86400
# Secrets shorter than this are refused at start: the key is guessable offline from any
# report URL it signed.
MIN_KEY_LENGTH = 16


def dlr_signature(key: str, notification_id: str, expires: int) -> str:
    return hmac.new(key.encode(), f"kannel-dlr|{notification_id}|{expires}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def dlr_signature_ok(key: str | None, notification_id: str, expires: str, given: str, now: float) -> bool:
    """Whether a report URL's `sig` signs this notification id and this expiry, and the
    expiry (Unix seconds) has not passed."""
    if not key or not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(dlr_signature(key, notification_id, int(expires)).encode(), given.encode())


@dataclass(frozen=True)
class KannelConfig:
    sendsms_url: str
    username: str
    password: str
    dlr_url: str
    report_signing_key: str
    smsc_id: str = ""
    short_code: str = ""

    @classmethod
    def from_env(cls, env: dict) -> "KannelConfig":
        missing = [name for name in ("KANNEL_SENDSMS_URL", "KANNEL_SENDSMS_USER", "KANNEL_SENDSMS_PASSWORD",
                                     "KANNEL_DLR_URL", "SMS_REPORT_SIGNING_KEY") if not env.get(name)]
        if missing:
            raise ValueError(f"SMS_GATEWAY=kannel needs {', '.join(missing)}")
        for name in ("KANNEL_SENDSMS_URL", "KANNEL_DLR_URL"):
            if urlparse(env[name]).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s):// URL")
        key = env["SMS_REPORT_SIGNING_KEY"]
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"SMS_REPORT_SIGNING_KEY must be at least {MIN_KEY_LENGTH} characters")
        # One secret, one job: the key signing report URLs must not also open the inbound
        # SMS or the receipts routes, whose secrets Kannel and the gateways hold.
        for other in ("SMS_INBOUND_TOKEN", "SMS_DELIVERY_TOKEN"):
            if env.get(other) and hmac.compare_digest(env[other].encode(), key.encode()):
                raise ValueError(f"SMS_REPORT_SIGNING_KEY must differ from {other}")
        return cls(env["KANNEL_SENDSMS_URL"], env["KANNEL_SENDSMS_USER"], env["KANNEL_SENDSMS_PASSWORD"],
                   env["KANNEL_DLR_URL"], key, env.get("KANNEL_SMSC_ID", ""), env.get("KANNEL_SHORT_CODE", ""))


class KannelGateway:
    """POST sendsms: the message in UTF-8 as the body, the rest in X-Kannel-* headers.

    202 ("0: Accepted for delivery", "3: Queued for later delivery"): accepted — bearerbox
    keeps it in its store until the SMSC takes it. 503, or smsbox unreachable: retry.
    401/403 (a wrong sendsms password): retry, so that messages wait for the operator to
    fix the setting instead of failing. Any other 4xx: the message itself is refused."""

    receipts = True

    def __init__(self, config: KannelConfig, timeout_seconds: float = 10.0, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time):
        self.config, self.timeout, self.clock = config, timeout_seconds, clock
        self.session = session or requests.Session()
        parts = urlparse(config.sendsms_url)
        self.url = f"kannel://{parts.hostname}" + (f":{parts.port}" if parts.port else "")  # the route's name

    def dlr_url(self, notification_id: str) -> str:
        # %d is Kannel's report type; the rest is ours, signed per message with an expiry.
        expires = int(self.clock()) + REPORT_URL_LIFETIME
        query = urlencode({"id": notification_id, "exp": expires,
                           "sig": dlr_signature(self.config.report_signing_key, notification_id, expires)})
        separator = "&" if "?" in self.config.dlr_url else "?"
        return f"{self.config.dlr_url}{separator}{query}&type=%d"

    def headers(self, sms: OutboundSms) -> dict:
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-Kannel-Username": self.config.username, "X-Kannel-Password": self.config.password,
            "X-Kannel-To": sms.to, "X-Kannel-Coding": CODING[sms.encoding],
            "X-Kannel-DLR-Mask": str(DLR_MASK), "X-Kannel-DLR-URL": self.dlr_url(sms.id),
        }
        if self.config.smsc_id:
            headers["X-Kannel-SMSC"] = self.config.smsc_id
        if self.config.short_code:
            headers["X-Kannel-From"] = self.config.short_code
        return headers

    def send(self, sms: OutboundSms) -> Outcome:
        try:
            response = self.session.post(self.config.sendsms_url, data=sms.text.encode("utf-8"),
                                         headers=self.headers(sms), timeout=self.timeout)
        except requests.RequestException as exc:
            return outcome_for_request_error(exc, "kannel")
        return outcome_for_answer(response.status_code, response.text)

    def close(self) -> None:
        self.session.close()


def outcome_for_answer(status: int, body: str) -> Outcome:
    """smsbox's answer -> Outcome. The detail keeps Kannel's own words (never the message)."""
    said = " ".join(body.split())[:60]
    detail = f"kannel HTTP {status}: {said}" if said else f"kannel HTTP {status}"
    if 200 <= status < 300:
        return Outcome.ok()
    if status >= 500 or status in (401, 403, 408, 429):
        return Outcome.retry(detail)
    return Outcome.reject(detail)
