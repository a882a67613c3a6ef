"""prepare(settings, demo): the queue database's indexes, and with demo the services and
counters of every demo ward. Idempotent: runs on every start."""
from __future__ import annotations

from motcua_common import demo as demo_data
from motcua_common.config import Settings
from motcua_common.mongo import connect, service_database

from .store import QueueStore, ensure_indexes

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


def load_demo(store: QueueStore) -> None:
    """Straight into the store: bootstrap runs in its own short process, with no cache to forget."""
    for ward in demo_data.WARDS:
        ward_id = ward["ward_id"]
        store.save_ward(ward_id, ward["name"])
        for code, name, prefix in DEMO_SERVICES:
            store.save_service(ward_id, code, name, prefix)
        for counter_id, name, codes in DEMO_COUNTERS:
            store.save_counter(ward_id, counter_id, name, codes)


def prepare(settings: Settings, demo: bool = False) -> None:
    client = connect(settings)
    try:
        db = service_database(client, settings, "queue")
        ensure_indexes(db)
        if demo:
            load_demo(QueueStore(db))
    finally:
        client.close()
