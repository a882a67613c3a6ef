"""Prepare identity's database: indexes, the signing key, the bootstrap admin, demo data."""
from __future__ import annotations

import logging
from datetime import timedelta

from motcua_common import demo as demo_data
from motcua_common.clock import SystemClock
from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database
from motcua_common.indexes import ensure_plumbing_indexes
from motcua_common.ratelimit import FixedWindowLimiter

from . import store, units, wards
from .deps import LIMITERS, Deps, build_deps, key_ring
from .errors import WardExists

log = logging.getLogger(__name__)


def prepare(settings: Settings, demo: bool = False) -> None:
    client = connect(settings)
    try:
        db = service_database(client, settings, "identity")
        store.ensure_indexes(db)
        ensure_plumbing_indexes(db)
        for limiter in LIMITERS:
            FixedWindowLimiter(db, limiter, 1, timedelta(minutes=1)).ensure_indexes()
        clock = SystemClock(settings.timezone)
        key_ring(settings, clock)  # creates the first signing key on first start
        if settings.admin_password and store.officer_by_username(db, "admin") is None:
            # Like Grafana's admin bootstrap: only on first start; later changes go through the API.
            store.create_officer(db, username="admin", full_name="Quản trị hệ thống", ward_id=None, role="admin",
                                 password=settings.admin_password, created_by="bootstrap", now=clock.now())
            log.info("created the platform administrator 'admin'")
        if demo:
            open_demo_wards(build_deps(settings, db=db, clock=clock))
            for username, full_name, ward_id, role in demo_data.DEMO_STAFF:
                if store.officer_by_username(db, username) is None:
                    store.create_officer(db, username=username, full_name=full_name, ward_id=ward_id, role=role,
                                         password=demo_data.DEMO_STAFF_PASSWORD, created_by="demo", now=clock.now())
    finally:
        client.close()


def open_demo_wards(deps: Deps) -> None:
    """Each demo ward opened like any ward (wards.open_ward: WardOpened goes to queue,
    rating and dossier), with its demo id and population; one already open is left as it
    is. A demo ward stored before official codes were kept gets its code, once."""
    for ward in demo_data.WARDS:
        try:
            wards.open_ward(deps, None, ward["official_code"], ward_id=ward["ward_id"],
                            target_population=ward["target_population"])
            log.info("opened demo ward %s", ward["ward_id"])
        except WardExists as exists:
            stored = store.get_ward(deps.db, ward["ward_id"])
            if exists.field == "ward_id" and stored is not None and not stored.get("official_code") \
                    and store.ward_by_official_code(deps.db, ward["official_code"]) is None:
                found = units.unit(ward["official_code"])
                store.attach_official_code(deps.db, ward["ward_id"], {
                    "official_code": found.official_code, "province_code": found.province_code, "kind": found.kind,
                    "name": found.name, "province": found.province})
