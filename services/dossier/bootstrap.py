"""Preparing the dossier database on every start: indexes (the store's and the lookup rate
limit's) and the procedure catalog.

Idempotent: safe to run on every start and from several processes."""
from __future__ import annotations

import logging
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database

from . import store
from .catalog import load_catalog_file
from .deps import SERVICE, lookup_limiter

log = logging.getLogger(__name__)


def prepare(settings: Settings, demo: bool = False) -> None:
    # The catalog is reference data, loaded with or without --demo.
    client = connect(settings)
    try:
        db = service_database(client, settings, SERVICE)
        store.ensure_indexes(db)
        lookup_limiter(db).ensure_indexes()
        catalog = load_catalog_file()
        if store.install_catalog(db, catalog, SystemClock(settings.timezone).now()):
            log.info("procedure catalog loaded", extra={"catalog_version": catalog.version,
                                                        "procedures": len(catalog.procedures)})
    finally:
        client.close()
