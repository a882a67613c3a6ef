"""Preparing the dossier database on every start: indexes (the store's and the lookup rate
limit's) and the procedure catalog; with demo, the demo wards (recorded as WardOpened
records them) taking every level 3-4 procedure online (switched on through the use case a
ward's administrator uses).

Idempotent: safe to run on every start and from several processes."""
from __future__ import annotations

import logging
from motcua_common import demo as demo_data
from motcua_common.auth import Principal
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database

from . import offerings, scorecard_store, store, wards
from .catalog import load_catalog_file
from .deps import SERVICE, build_deps, lookup_limiter

log = logging.getLogger(__name__)


def prepare(settings: Settings, demo: bool = False) -> None:
    # The catalog is reference data, loaded with or without --demo.
    client = connect(settings)
    try:
        db = service_database(client, settings, SERVICE)
        store.ensure_indexes(db)
        scorecard_store.ensure_indexes(db)
        lookup_limiter(db).ensure_indexes()
        catalog = load_catalog_file()
        if store.install_catalog(db, catalog, SystemClock(settings.timezone).now()):
            log.info("procedure catalog loaded", extra={"catalog_version": catalog.version,
                                                        "procedures": len(catalog.procedures)})
        if demo:
            _prepare_demo_wards(settings, db)
    finally:
        client.close()


# The platform preparing its own demo: acts as the administrator would.
DEMO_ACTOR = Principal(subject="motcua-demo", role="admin", ward_id=None)


def _prepare_demo_wards(settings: Settings, db) -> None:
    deps = build_deps(settings, db=db)
    for ward in demo_data.WARDS:
        wards.record_ward_opened(deps, None, ward)
        switched = offerings.switch_on_every_online_procedure(deps, DEMO_ACTOR, ward["ward_id"])
        if switched:
            log.info("demo ward takes procedures online", extra={"ward_id": ward["ward_id"], "procedures": switched})
