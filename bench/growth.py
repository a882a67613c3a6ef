"""(4) How the costs grow: the platform's hot queries timed at growing data sizes on the
embedded database, with the plan (explain) that shows they walk an index, never the
collection. The sizes are those that load in a few minutes on this machine; the larger
ones are extrapolated from the measured slope, and said so."""
from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timezone

from motcua_testing.fixtures import collection_scans
from motcua_dossier.store import ensure_indexes as dossier_indexes
from motcua_identity.store import ensure_indexes as identity_indexes
from motcua_queue import domain as queue_domain
from motcua_queue.store import QueueStore
from motcua_queue.store import ensure_indexes as queue_indexes
from pymongo import MongoClient

TIMEZONE = "Asia/Ho_Chi_Minh"


def _stages(plan: dict) -> set[str]:
    found, todo = set(), [plan.get("queryPlanner", {}).get("winningPlan", plan)]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "stage" in node:
                found.add(node["stage"])
            todo.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            todo.extend(node)
    return found


def _today() -> str:
    """Today as the queue counts days (the ward's local date)."""
    return queue_domain.local_day(datetime.now(timezone.utc), TIMEZONE)


def _time(fn, repeat: int = 50) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat * 1000


def _load(db, wards: int, citizens: int, tickets_per_ward: int, dossiers_per_ward: int) -> None:
    rng = random.Random(wards * 7 + citizens)
    today = _today()
    ward_ids = [f"w{n:04d}" for n in range(wards)]
    batch = []
    for n in range(citizens):
        batch.append({"_id": str(uuid.uuid4()), "national_id": f"{n:012d}", "phone": f"+849{n:08d}",
                      "ward_id": rng.choice(ward_ids), "date_of_birth": datetime(1980, 1, 1)})
        if len(batch) == 5000:
            db["identity"].citizens.insert_many(batch)
            batch = []
    if batch:
        db["identity"].citizens.insert_many(batch)
    tickets, dossiers = [], []
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for ward in ward_ids:
        for n in range(tickets_per_ward):
            tickets.append({"_id": str(uuid.uuid4()), "ward_id": ward, "day": today, "service_code": "A",
                            "number": f"A{n:03d}", "status": "served" if n < tickets_per_ward - 5 else "waiting",
                            "priority": "normal", "priority_rank": 1, "sequence": n, "transferred_to": None,
                            "issued_at": now, "queued_at": now, "first_called_at": None, "called_at": None})
        for n in range(dossiers_per_ward):
            code = f"{ward}-{n:06d}"
            dossiers.append({"_id": str(uuid.uuid4()), "receipt_code": code, "receipt_key": code, "ward_id": ward,
                             "status": "submitted", "due_date": today, "citizen_id": "c", "submitted_at": datetime.now(timezone.utc)})
    for start in range(0, len(tickets), 5000):
        db["queue"].tickets.insert_many(tickets[start:start + 5000])
    for start in range(0, len(dossiers), 5000):
        db["dossier"].dossiers.insert_many(dossiers[start:start + 5000])


def measure(mongo_url: str, wards: int, citizens: int, tickets_per_ward: int = 100, dossiers_per_ward: int = 30) -> dict:
    client = MongoClient(mongo_url, tz_aware=True)
    prefix = f"g{uuid.uuid4().hex[:6]}_"
    db = {svc: client[f"{prefix}{svc}"] for svc in ("identity", "queue", "dossier")}
    identity_indexes(db["identity"])
    queue_indexes(db["queue"])
    dossier_indexes(db["dossier"])
    started = time.perf_counter()
    _load(db, wards, citizens, tickets_per_ward, dossiers_per_ward)
    load_seconds = time.perf_counter() - started
    today = _today()
    probe_ward = f"w{wards // 2:04d}"
    queries = {
        "citizen by national id (login)": (db["identity"].citizens, {"national_id": f"{citizens // 2:012d}"}),
        "waiting tickets of a ward (call-next, board)": (db["queue"].tickets, {"ward_id": probe_ward, "day": today, "status": "waiting"}),
        "dossier by receipt code (lookup, SMS TT)": (db["dossier"].dossiers, {"receipt_code": f"{probe_ward}-000007"}),
        "a ward's open dossiers (officer's list)": (db["dossier"].dossiers, {"ward_id": probe_ward, "status": "submitted"}),
    }
    out = {"wards": wards, "citizens": citizens, "tickets": wards * tickets_per_ward,
           "dossiers": wards * dossiers_per_ward, "load_seconds": round(load_seconds, 1), "queries": {}}
    for name, (collection, query) in queries.items():
        stages = _stages(collection.find(query).explain())
        out["queries"][name] = {"ms": round(_time(lambda: list(collection.find(query))), 3),
                                "index": "IXSCAN" in stages, "collection_scan": "COLLSCAN" in stages}
    # A counter's click at the probe ward: its line read, the next ticket claimed, then served
    # (writes: each is a compare-and-set on one ticket, with its event in the outbox).
    counter = {"counter_id": "quay-1", "service_codes": ["A"]}

    def click(queue_db) -> None:
        store = QueueStore(queue_db, TIMEZONE)
        called = store.call_next(probe_ward, counter, datetime.now(timezone.utc))
        store.apply_action(called, "serve", datetime.now(timezone.utc), "officer")

    scans = collection_scans(db["queue"], click)
    out["queries"]["a counter's click: call next + serve (writes)"] = {
        "ms": round(_time(lambda: click(db["queue"]), repeat=4), 3), "index": not scans, "collection_scan": bool(scans)}
    for svc in db:
        client.drop_database(f"{prefix}{svc}")
    client.close()
    return out


def sizes(largest_citizens: int = 100_000) -> list[tuple[int, int]]:
    """(wards, citizens) steps: 1 and 50 wards with 10k citizens, 500 wards with 100k, and
    500 wards with `largest_citizens` when it is more (the 1M step loads for ~6 minutes here)."""
    steps = [(1, 10_000), (50, 10_000), (500, 100_000)]
    if largest_citizens > 100_000:
        steps.append((500, largest_citizens))
    return steps


def run(mongo_url: str, sizes=((1, 10_000), (50, 10_000), (500, 100_000))) -> list[dict]:
    return [measure(mongo_url, wards, citizens) for wards, citizens in sizes]
