"""Structured (JSON) logs on stderr, one object a line, with the service and role.

Never log secrets or personal identifiers: log opaque ids (citizen_id, dossier_id)."""
from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter


# A national id (12 digits) or a Vietnamese phone number, wherever it sneaks into a line.
_PERSONAL_NUMBER = re.compile(r"(?<!\d)(?:\d{12}|(?:\+?84|0)[35789]\d{8})(?!\d)")


def mask_personal_numbers(text: str) -> str:
    return _PERSONAL_NUMBER.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 5) + m.group(0)[-2:], text)


class _MaskingFormatter(JsonFormatter):
    """The last line of defence: code never logs personal numbers on purpose, and this
    masks any that arrive through an exception message or a library."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_personal_numbers(super().format(record))


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, role: str):
        super().__init__()
        self.service, self.role = service, role

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.role = self.role
        return True


def configure_logging(service: str, role: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _MaskingFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(role)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_ContextFilter(service, role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries: keep their warnings, drop their per-message debug/info lines.
    # pymongo's command log carries documents (personal data) at DEBUG: never below WARNING.
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    for noisy in ("pika", "kombu", "amqp", "urllib3", "werkzeug", "nameko"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
