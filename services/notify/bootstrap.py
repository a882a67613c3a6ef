"""Prepare notify's database: indexes only (idempotent, safe on every start).

The unique key of a notification (source, template, recipient) is what makes "each
(event, template, recipient) is sent at most once" hold across redeliveries and workers,
so it exists before any worker consumes. There is no demo data: a demo group would text
made-up numbers the moment a real gateway is configured."""
from __future__ import annotations

from motcua_common import audit
from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database
from motcua_common.indexes import ensure_plumbing_indexes

from . import store


def prepare(settings: Settings, demo: bool = False) -> None:
    client = connect(settings)
    try:
        db = service_database(client, settings, "notify")
        # Notifications expire MOTCUA_RETENTION_NOTIFICATIONS_DAYS after they were made (TTL).
        store.ensure_indexes(db, audit.retention_days("notifications", settings))
        ensure_plumbing_indexes(db)
    finally:
        client.close()
