"""Structured (JSON) logs on stderr, one object a line, with the service and role.

Never log secrets or personal identifiers: log opaque ids (citizen_id, dossier_id)."""
from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


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
        JsonFormatter(
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
    for noisy in ("pika", "kombu", "amqp", "urllib3", "werkzeug", "nameko"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
