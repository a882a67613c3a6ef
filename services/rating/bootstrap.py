"""Preparing the rating database: indexes, and with demo the demo wards (their names for
statistics and rankings), recorded through the use case WardOpened goes through.
Opportunities arrive as events from queue and dossier."""
from __future__ import annotations

from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database
from motcua_common.indexes import ensure_plumbing_indexes

from motcua_common import demo as demo_data

from . import screens, store, wards
from .deps import build_deps


def prepare(settings: Settings, demo: bool = False) -> None:
    """Idempotent: safe on every start."""
    client = connect(settings)
    try:
        db = service_database(client, settings, "rating")
        ensure_plumbing_indexes(db)
        store.ensure_indexes(db)
        screens.ensure_indexes(db)
        if demo:
            deps = build_deps(settings, db=db, verifier=None)
            for ward in demo_data.WARDS:
                wards.record_ward_opened(deps, None, ward)
    finally:
        client.close()
