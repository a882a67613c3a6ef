"""Preparing the dossier database on every start: indexes (the store's and the lookup rate
limit's) and the procedure catalog; with demo, the demo wards (recorded as WardOpened
records them) taking every level 3-4 procedure online (switched on through the use case a
ward's administrator uses).

Idempotent: safe to run on every start and from several processes."""
from __future__ import annotations

import logging
from datetime import timedelta

from motcua_common import audit
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
        apply_retention(settings, db)
    finally:
        client.close()


def apply_retention(settings: Settings, db) -> dict[str, int]:
    """The retention periods, applied now (every start, and `motcua audit prune`): scanned
    papers of dossiers closed longer than MOTCUA_RETENTION_ATTACHMENTS_DAYS ago, and audit
    records older than MOTCUA_RETENTION_AUDIT_DAYS (behind the chain's checkpoint)."""
    now = SystemClock(settings.timezone).now()
    done = {"attachments": 0, "audit": 0}
    days = audit.retention_days("attachments", settings)
    if days > 0:
        while True:
            purged = store.prune_closed_attachments(db, now - timedelta(days=days), now)
            done["attachments"] += purged
            if purged < 500:
                break
    done["audit"] = audit.prune_all(db, audit.retention_days("audit", settings), now)
    if any(done.values()):
        log.info("retention applied", extra={"service": SERVICE, **done})
    return done


# The platform preparing its own demo: acts as the administrator would.
DEMO_ACTOR = Principal(subject="motcua-demo", role="admin", ward_id=None)


def _prepare_demo_wards(settings: Settings, db) -> None:
    deps = build_deps(settings, db=db)
    for ward in demo_data.WARDS:
        wards.record_ward_opened(deps, None, ward)
        switched = offerings.switch_on_every_online_procedure(deps, DEMO_ACTOR, ward["ward_id"])
        if switched:
            log.info("demo ward takes procedures online", extra={"ward_id": ward["ward_id"], "procedures": switched})
