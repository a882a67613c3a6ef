"""Email, for the people who gave an address (group members today; citizens once identity
keeps an address, see README): SMTP through `SMTP_URL`, or the notify log without one.

`SMTP_URL`: smtp://[user:password@]host[:port] (STARTTLS when the server offers it),
or smtps://... (TLS from the first byte). `SMTP_FROM`: the sender address.
The notification id goes out as the Message-ID, so that a retry after a lost answer is
recognisably the same message to the receiving side."""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from .gateways import Outcome

log = logging.getLogger(__name__)

SUBJECT = "Thông báo của Bộ phận Một cửa"


@dataclass(frozen=True)
class OutboundEmail:
    id: str
    to: str
    subject: str
    text: str
    ward_id: str = ""
    template: str = ""
    secret: bool = False


def _message(mail: OutboundEmail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = f"<{mail.id}@motcua>"
    message.set_content(mail.text)   # UTF-8, Vietnamese intact
    return message


class SmtpGateway:
    def __init__(self, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, implicit_tls: bool = False, timeout_seconds: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.implicit_tls, self.timeout = implicit_tls, timeout_seconds

    @classmethod
    def from_url(cls, url: str, sender: str, timeout_seconds: float = 10.0) -> "SmtpGateway":
        parts = urlparse(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        implicit = parts.scheme == "smtps"
        return cls(parts.hostname, parts.port or (465 if implicit else 25), sender,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None, implicit, timeout_seconds)

    def send(self, mail: OutboundEmail) -> Outcome:
        smtp_class = smtplib.SMTP_SSL if self.implicit_tls else smtplib.SMTP
        sent_data = False
        try:
            with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
                if not self.implicit_tls and smtp.has_extn("starttls"):
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                sent_data = True
                smtp.send_message(_message(mail, self.sender))
            return Outcome.ok()
        except smtplib.SMTPRecipientsRefused:
            return Outcome.reject("SMTP recipient refused")
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                return Outcome.retry(f"SMTP {exc.smtp_code}")
            return Outcome.reject(f"SMTP {exc.smtp_code}")
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome.retry(f"SMTP unreachable: {exc.__class__.__name__}", ambiguous=sent_data)


class ConsoleMail:
    """No SMTP server configured: the email goes to the notify log (never the address)."""

    def send(self, mail: OutboundEmail) -> Outcome:
        text = "[nội dung bí mật, không ghi vào nhật ký]" if mail.secret else mail.text
        log.info("email written to the log (no SMTP server configured): %s", text,
                 extra={"notification_id": mail.id, "ward_id": mail.ward_id, "template": mail.template})
        return Outcome.ok()


def mail_gateway_for(url: str | None, sender: str, timeout_seconds: float = 10.0):
    if not url:
        return ConsoleMail()
    return SmtpGateway.from_url(url, sender, timeout_seconds)
