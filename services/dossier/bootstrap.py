"""Preparing the dossier database on every start: indexes and the procedure catalog.

Idempotent: safe to run on every start and from several processes."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database

from . import store
from .catalog import load_catalog_file

log = logging.getLogger(__name__)


def prepare(settings: Settings, demo: bool = False) -> None:
    # The catalog is reference data, loaded with or without --demo.
    client = connect(settings)
    try:
        db = service_database(client, settings, "dossier")
        store.ensure_indexes(db)
        catalog = load_catalog_file()
        if store.install_catalog(db, catalog, datetime.now(timezone.utc)):
            log.info("procedure catalog loaded", extra={"catalog_version": catalog.version,
                                                        "procedures": len(catalog.procedures)})
    finally:
        client.close()
