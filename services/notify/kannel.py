"""Kannel, the self-hosted SMS gateway a city's short code runs on: smsbox's HTTP `sendsms`
for outgoing messages, its `dlr-url` callbacks for delivery reports.

Settings (environment), read when SMS_GATEWAY=kannel:
  KANNEL_SENDSMS_URL       smsbox's sendsms, e.g. http://kannel:13013/cgi-bin/sendsms
  KANNEL_SENDSMS_USER, KANNEL_SENDSMS_PASSWORD   the sendsms-user of kannel.conf
  KANNEL_DLR_URL           where Kannel reports delivery: notify's
                           .../notify/api/v1/kannel/dlr as Kannel reaches it
  KANNEL_SMSC_ID           send through this smsc group only [any]
  KANNEL_SHORT_CODE        the sender shown on phones [smsbox's global-sender]

A delivery report names its message by the notification id and carries a signature of
that id (HMAC with SMS_INBOUND_TOKEN), so a report URL seen in Kannel's access log can
settle that one message and no other.

sendsms has no Idempotency-Key. A try whose answer was lost (timeout, reset after the
request went out) is "ambiguous" and stays on Kannel (routing.py); its resend could then
reach the phone twice. Kannel runs beside notify, so such a loss is rare; a refused
connection (smsbox or bearerbox down) is not ambiguous and is simply retried."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
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


def dlr_signature(secret: str, notification_id: str) -> str:
    return hmac.new(secret.encode(), f"kannel-dlr|{notification_id}".encode(), hashlib.sha256).hexdigest()[:32]


def dlr_signature_ok(secret: str | None, notification_id: str, given: str) -> bool:
    if not secret:
        return False
    return hmac.compare_digest(dlr_signature(secret, notification_id).encode(), given.encode())


@dataclass(frozen=True)
class KannelConfig:
    sendsms_url: str
    username: str
    password: str
    dlr_url: str
    dlr_secret: str
    smsc_id: str = ""
    short_code: str = ""

    @classmethod
    def from_env(cls, env: dict, dlr_secret: str | None) -> "KannelConfig":
        missing = [name for name in ("KANNEL_SENDSMS_URL", "KANNEL_SENDSMS_USER", "KANNEL_SENDSMS_PASSWORD",
                                     "KANNEL_DLR_URL") if not env.get(name)]
        if not dlr_secret:
            missing.append("SMS_INBOUND_TOKEN")
        if missing:
            raise ValueError(f"SMS_GATEWAY=kannel needs {', '.join(missing)}")
        for name in ("KANNEL_SENDSMS_URL", "KANNEL_DLR_URL"):
            if urlparse(env[name]).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s):// URL")
        return cls(env["KANNEL_SENDSMS_URL"], env["KANNEL_SENDSMS_USER"], env["KANNEL_SENDSMS_PASSWORD"],
                   env["KANNEL_DLR_URL"], dlr_secret, env.get("KANNEL_SMSC_ID", ""), env.get("KANNEL_SHORT_CODE", ""))


class KannelGateway:
    """GET sendsms with the message in UTF-8 and the coding Kannel must send it in.

    202 ("0: Accepted for delivery", "3: Queued for later delivery"): accepted — bearerbox
    keeps it in its store until the SMSC takes it. 503, or smsbox unreachable: retry.
    401/403 (a wrong sendsms password): retry, so that messages wait for the operator to
    fix the setting instead of failing. Any other 4xx: the message itself is refused."""

    receipts = True

    def __init__(self, config: KannelConfig, timeout_seconds: float = 10.0, session: requests.Session | None = None):
        self.config, self.timeout = config, timeout_seconds
        self.session = session or requests.Session()
        parts = urlparse(config.sendsms_url)
        self.url = f"kannel://{parts.hostname}" + (f":{parts.port}" if parts.port else "")  # the route's name

    def dlr_url(self, notification_id: str) -> str:
        # %d is Kannel's report type; the rest is ours, signed per message.
        query = urlencode({"id": notification_id, "sig": dlr_signature(self.config.dlr_secret, notification_id)})
        separator = "&" if "?" in self.config.dlr_url else "?"
        return f"{self.config.dlr_url}{separator}{query}&type=%d"

    def params(self, sms: OutboundSms) -> dict:
        params = {
            "username": self.config.username, "password": self.config.password,
            "to": sms.to, "text": sms.text, "charset": "UTF-8", "coding": CODING[sms.encoding],
            "dlr-mask": str(DLR_MASK), "dlr-url": self.dlr_url(sms.id),
        }
        if self.config.smsc_id:
            params["smsc"] = self.config.smsc_id
        if self.config.short_code:
            params["from"] = self.config.short_code
        return params

    def send(self, sms: OutboundSms) -> Outcome:
        try:
            response = self.session.get(self.config.sendsms_url, params=self.params(sms), timeout=self.timeout)
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
