"""prepare(settings, demo): the queue database's indexes, and with demo the demo wards with
their services and counters. Idempotent: runs on every start.

The demo goes through the use cases a real ward goes through: each demo ward is recorded
as WardOpened would record it (wards.record_ward_opened), open at all hours (the ward
setting `always_open`, so demos and tests work at any time of day), and its services and
counters are saved as the ward admin's PUT calls save them (counters.put_service,
counters.put_counter) — on the first start only, so a ward admin's later edits stand."""
from __future__ import annotations

from motcua_common import demo as demo_data
from motcua_common.auth import Principal
from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database

from . import counters, hours, wards
from .deps import build_deps, heartbeat_limiter
from .store import ensure_indexes

# The services a ward's one-stop desk typically queues for; the code is also the letter
# printed on the ticket (A001 is the first Hộ tịch ticket of the day).
DEMO_SERVICES = [
    # code, name, prefix
    ("A", "Hộ tịch", "A"),
    ("B", "Chứng thực", "B"),
    ("C", "Cư trú", "C"),
    ("D", "Đất đai – Xây dựng", "D"),
    ("E", "Lao động – Thương binh và Xã hội", "E"),
    ("F", "Trả kết quả", "F"),
]

# Three counters whose services overlap, as in a small ward: an officer covers several fields.
DEMO_COUNTERS = [
    # counter_id, name, service codes
    ("quay-1", "Quầy 1", ["A", "B"]),
    ("quay-2", "Quầy 2", ["B", "C", "E"]),
    ("quay-3", "Quầy 3", ["D", "F", "A"]),
]

# Who sets the demo up: the platform itself, with the platform admin's rights.
SYSTEM = Principal(subject="system:bootstrap", role="admin", ward_id=None)


def load_demo(deps) -> None:
    for ward in demo_data.WARDS:
        ward_id = ward["ward_id"]
        wards.record_ward_opened(deps, SYSTEM, ward, opening_hours=hours.always_open_hours())
        if not counters.services(deps, SYSTEM, ward_id):
            for code, name, prefix in DEMO_SERVICES:
                counters.put_service(deps, SYSTEM, ward_id, code, {"name": name, "prefix": prefix})
        if not counters.counters(deps, SYSTEM, ward_id):
            for counter_id, name, codes in DEMO_COUNTERS:
                counters.put_counter(deps, SYSTEM, ward_id, counter_id, {"name": name, "service_codes": codes})


def prepare(settings: Settings, demo: bool = False) -> None:
    client = connect(settings)
    try:
        db = service_database(client, settings, "queue")
        ensure_indexes(db)
        heartbeat_limiter(db).ensure_indexes()
        if demo:
            load_demo(build_deps(settings, db=db, verifier=None, devices=None))
    finally:
        client.close()
