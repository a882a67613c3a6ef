"""Preparing the rating database: indexes only. Rating has no reference or demo data of its
own; opportunities arrive as events from queue and dossier."""
from __future__ import annotations

from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database
from motcua_common.indexes import ensure_plumbing_indexes

from . import store


def prepare(settings: Settings, demo: bool = False) -> None:
    """Idempotent: safe on every start."""
    client = connect(settings)
    try:
        db = service_database(client, settings, "rating")
        ensure_plumbing_indexes(db)
        store.ensure_indexes(db)
    finally:
        client.close()
