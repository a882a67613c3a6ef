"""The telco-standard option: an SMPP 3.4 transmitter bound to the operator's SMSC
(smpplib), configured as `smpp://system_id:password@host:2775?source=8188`.

SMPP has no Idempotency-Key: a submit_sm whose answer was lost may have been taken.
Such a try is reported "ambiguous", so the message stays on this gateway (routing.py);
whether to resend is then the SMSC's call, which is why an HTTP gateway is preferred
where the operator offers one.

Each part of a long message is cut by domain.split_parts (never through a character,
unlike smpplib's own splitter) and sent with a concatenation header."""
from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse

import smpplib.client
import smpplib.consts as c
import smpplib.exceptions
import smpplib.gsm

from . import domain
from .gateways import Outcome, OutboundSms

log = logging.getLogger(__name__)

DATA_CODING = {domain.GSM7: c.SMPP_ENCODING_DEFAULT, domain.UCS2: c.SMPP_ENCODING_ISO10646}

# The SMSC is busy, not the message wrong: worth a later try.
TRANSIENT = frozenset({
    c.SMPP_ESME_RTHROTTLED, c.SMPP_ESME_RMSGQFUL, c.SMPP_ESME_RSYSERR, c.SMPP_ESME_RSUBMITFAIL,
    c.SMPP_ESME_RX_T_APPN,
})


def outcome_for_status(status: int) -> Outcome:
    """submit_sm_resp's command_status -> the sender's Outcome."""
    if status == c.SMPP_ESME_ROK:
        return Outcome.ok()
    detail = f"SMPP 0x{status:08X}"
    if status in TRANSIENT:
        return Outcome.retry(detail)
    return Outcome.reject(detail)


@dataclass(frozen=True)
class Submit:
    short_message: bytes
    data_coding: int
    esm_class: int


def submits_for(sms: OutboundSms, reference: int) -> list[Submit]:
    """The submit_sm bodies of one message: one, or one per part with a UDH
    (IEI 0x00: 8-bit reference, total, sequence)."""
    parts = domain.split_parts(sms.text, sms.encoding)
    encode = smpplib.gsm.gsm_encode if sms.encoding == domain.GSM7 else (lambda t: t.encode("utf-16-be"))
    coding = DATA_CODING[sms.encoding]
    if len(parts) == 1:
        return [Submit(encode(parts[0]), coding, c.SMPP_MSGTYPE_DEFAULT)]
    return [
        Submit(bytes([0x05, 0x00, 0x03, reference & 0xFF, len(parts), index]) + encode(part), coding,
               c.SMPP_GSMFEAT_UDHI)
        for index, part in enumerate(parts, start=1)
    ]


class SmppGateway:
    # Receipts arrive as deliver_sm on a receiver bind, which this transmitter does not
    # hold: `sent` is final here until a receiver relays them to POST /receipts.
    receipts = False
    def __init__(self, host: str, port: int, system_id: str, password: str, source: str,
                 timeout_seconds: float = 10.0):
        self.host, self.port = host, port
        self.system_id, self.password, self.source = system_id, password, source
        self.timeout = timeout_seconds
        self.client: smpplib.client.Client | None = None
        self._lock = threading.Lock()   # one submit at a time on the one bound link

    @classmethod
    def from_url(cls, url: str, timeout_seconds: float = 10.0) -> "SmppGateway":
        parts = urlparse(url)
        source = parse_qs(parts.query).get("source", [""])[0]
        if not parts.hostname or not parts.username or not source:
            raise ValueError("an smpp:// gateway needs system_id, host and ?source=<short code>")
        return cls(parts.hostname, parts.port or 2775, unquote(parts.username), unquote(parts.password or ""),
                   source, timeout_seconds)

    def _bound(self) -> smpplib.client.Client:
        if self.client is None:
            client = smpplib.client.Client(self.host, self.port, timeout=self.timeout)
            client.connect()
            client.bind_transmitter(system_id=self.system_id, password=self.password)
            self.client = client
        return self.client

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.disconnect()
            except Exception:
                pass
            self.client = None

    def send(self, sms: OutboundSms) -> Outcome:
        with self._lock:
            try:
                client = self._bound()
            except (OSError, smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError) as exc:
                self._drop()
                return Outcome.retry(f"smpp bind: {exc.__class__.__name__}")
            submitted = False
            try:
                for submit in submits_for(sms, random.randint(0, 255)):
                    client.send_message(
                        source_addr_ton=c.SMPP_TON_ALNUM if not self.source.isdigit() else c.SMPP_TON_NWSPEC,
                        source_addr=self.source,
                        dest_addr_ton=c.SMPP_TON_INTL, destination_addr=sms.to.lstrip("+"),
                        short_message=submit.short_message, data_coding=submit.data_coding,
                        esm_class=submit.esm_class,
                    )
                    submitted = True
                    answer = client.read_pdu()
                    outcome = outcome_for_status(answer.status)
                    if not outcome.accepted:
                        return outcome
                return Outcome.ok()
            except (OSError, smpplib.exceptions.ConnectionError) as exc:
                self._drop()
                return Outcome.retry(f"smpp: {exc.__class__.__name__}", ambiguous=submitted)

    def close(self) -> None:
        with self._lock:
            if self.client is not None:
                try:
                    self.client.unbind()
                except Exception:
                    pass
            self._drop()
