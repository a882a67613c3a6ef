"""Where an SMS goes out: the HTTP gateway of CONTRACT.md, or the console on one machine
(an SMPP link to a telco's SMSC is smpp.py, Kannel kannel.py; routing.gateway_for picks).

A gateway answers with an Outcome: accepted, worth retrying (the gateway or the link is
down, or it asks us to slow down), or rejected for good. It never sees more than the
message; the retry policy lives in the sender."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
from urllib3.exceptions import NewConnectionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundSms:
    id: str            # the notification id: the Idempotency-Key, the same on every retry
    to: str            # E.164
    text: str
    encoding: str      # gsm7 | ucs2
    segments: int
    ward_id: str = ""  # for the log, not for the wire
    template: str = ""
    secret: bool = False  # the text carries a credential: no log line may show it

    def loggable_text(self) -> str:
        return "[nội dung bí mật, không ghi vào nhật ký]" if self.secret else self.text

    def wire(self) -> dict:
        return {"id": self.id, "to": self.to, "text": self.text, "encoding": self.encoding,
                "segments": self.segments}


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    retryable: bool = False
    detail: str = ""                 # short and free of personal data: "HTTP 503", "timeout"
    retry_after: float | None = None
    # The request went out but no answer came back: the gateway may have taken it. Such a
    # message is retried on the same gateway only (its Idempotency-Key dedupes), see routing.py.
    ambiguous: bool = False

    @classmethod
    def ok(cls) -> "Outcome":
        return cls(accepted=True)

    @classmethod
    def retry(cls, detail: str, retry_after: float | None = None, ambiguous: bool = False) -> "Outcome":
        return cls(accepted=False, retryable=True, detail=detail, retry_after=retry_after, ambiguous=ambiguous)

    @classmethod
    def reject(cls, detail: str) -> "Outcome":
        return cls(accepted=False, retryable=False, detail=detail)


class ConsoleGateway:
    """No SMS gateway configured (one machine): the message goes to the notify log and
    stays in the notify store. The phone number is never logged."""

    receipts = False   # nothing will ever report delivery: `sent` is final

    def send(self, sms: OutboundSms) -> Outcome:
        log.info(
            "sms written to the log (no SMS gateway configured): %s", sms.loggable_text(),
            extra={"notification_id": sms.id, "ward_id": sms.ward_id, "template": sms.template,
                   "encoding": sms.encoding, "segments": sms.segments},
        )
        return Outcome.ok()


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def outcome_for_request_error(exc: requests.RequestException, gateway: str = "") -> Outcome:
    """A request that got no answer -> the sender's Outcome, for every gateway spoken to
    over `requests` (this HTTP gateway, Kannel's sendsms). `gateway` names it in the
    detail ("kannel: timeout", "kannel unreachable: ..."); unnamed: "timeout", ...

    A connect timeout never reached the gateway; a refused connection neither: both are
    plain retries. A read timeout, or a reset after the request went out, may have been
    taken: "ambiguous", retried on the same gateway only (routing.py)."""
    said = f"{gateway}: " if gateway else ""
    unreachable = f"{gateway} unreachable" if gateway else "unreachable"
    if isinstance(exc, requests.ConnectTimeout):
        return Outcome.retry(f"{said}connect timeout")
    if isinstance(exc, requests.Timeout):
        return Outcome.retry(f"{said}timeout", ambiguous=True)
    if isinstance(exc, requests.ConnectionError):
        return Outcome.retry(f"{unreachable}: {exc.__class__.__name__}", ambiguous=not _never_connected(exc))
    return Outcome.retry(f"{unreachable}: {exc.__class__.__name__}", ambiguous=True)


# A throttling gateway pauses every message (routing.py): a Retry-After of hours, by mistake
# or design, would hold every citizen's SMS that long; past this we ask again.
MAX_RETRY_AFTER_SECONDS = 300.0


def _retry_after_seconds(value: str | None) -> float | None:
    try:
        return min(max(0.0, float(value)), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:
        return None  # an HTTP date: our own backoff is good enough


class HttpGateway:
    """POST {"id", "to", "text", "encoding", "segments"} with `Idempotency-Key: <id>`.

    2xx: accepted. 5xx, 429, 408 or no answer in time: retry. Any other 4xx: the message
    itself is wrong, retrying cannot help. Delivery receipts come back to POST /receipts."""

    receipts = True

    def __init__(self, url: str, timeout_seconds: float = 10.0, session: requests.Session | None = None):
        self.url = url
        self.timeout = timeout_seconds
        self.session = session or requests.Session()

    def send(self, sms: OutboundSms) -> Outcome:
        try:
            response = self.session.post(
                self.url,
                data=json.dumps(sms.wire(), ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": sms.id},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            return outcome_for_request_error(exc)
        status = response.status_code
        if 200 <= status < 300:
            return Outcome.ok()
        if status >= 500 or status in (408, 429):
            return Outcome.retry(f"HTTP {status}", _retry_after_seconds(response.headers.get("Retry-After")))
        return Outcome.reject(f"HTTP {status}")

    def close(self) -> None:
        self.session.close()


def route_name(url: str | None) -> str:
    """A gateway's name for logs and metrics: scheme, host and port, never a credential."""
    if not url:
        return "console"
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
