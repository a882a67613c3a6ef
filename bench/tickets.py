"""(1) Ticket issuance under 16 concurrent kiosks, against the least a ticket must do: a
minimal Flask endpoint, served by the same gunicorn settings, doing one counter bump and
one insert on the same database."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import requests
from flask import Flask, jsonify
from pymongo import MongoClient, ReturnDocument

from motcua_common import demo
from motcua_platform.embedded import free_port

from .harness import ROOT, percentile


def minimal_ticket_app(mongo_url: str) -> Flask:
    db = MongoClient(mongo_url)["bench_minimal_ticket"]
    app = Flask("minimal_ticket")

    @app.post("/wards/<ward_id>/tickets")
    def issue(ward_id: str):
        sequence = db.sequences.find_one_and_update({"_id": f"{ward_id}:A"}, {"$inc": {"n": 1}}, upsert=True,
                                                    return_document=ReturnDocument.AFTER)
        ticket = {"_id": str(uuid.uuid4()), "ward_id": ward_id, "number": f"A{sequence['n']:03d}",
                  "issued_at": datetime.now(timezone.utc)}
        db.tickets.insert_one(ticket)
        return jsonify({"ticket_id": ticket["_id"], "number": ticket["number"]}), 201

    return app


def start_minimal(mongo_url: str, processes: int = 1) -> tuple[str, subprocess.Popen]:
    """The minimal endpoint in its own process, served like the platform's APIs (gunicorn,
    `processes` workers, 16 threads each)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.tickets", mongo_url, str(port), str(processes)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(base, timeout=1)
            return base, process
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("the minimal ticket endpoint did not start")


def hammer(url_for, kiosks: int, seconds: float) -> dict:
    """`kiosks` threads issuing tickets back to back for `seconds`; rate and latencies."""
    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + seconds

    def kiosk(index: int):
        session = requests.Session()
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = session.post(url_for(index), json={"service_code": "A", "priority": "normal"}, timeout=30)
            mine.append(time.perf_counter() - started)
            if response.status_code != 201:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(kiosks)]
    begun = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begun
    return {"tickets": len(latencies), "per_s": round(len(latencies) / elapsed, 1), "errors": errors[0],
            "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p99_ms": round(percentile(latencies, 99) * 1000, 1)}


def _merge(parts: list[dict]) -> dict:
    """Rounds of one side taken together: rates add up over the time they took."""
    tickets = sum(p["tickets"] for p in parts)
    seconds = sum(p["tickets"] / p["per_s"] for p in parts if p["per_s"])
    return {"tickets": tickets, "per_s": round(tickets / seconds, 1) if seconds else 0.0,
            "errors": sum(p["errors"] for p in parts),
            "p50_ms": max(p["p50_ms"] for p in parts), "p99_ms": max(p["p99_ms"] for p in parts),
            "rounds": [p["per_s"] for p in parts]}


def run(base_url: str, mongo_url: str, kiosks: int = 16, seconds: float = 20, processes: int = 1,
        rounds: int = 2) -> dict:
    """The platform against the minimal endpoint, both served by `processes` gunicorn
    workers, in `rounds` interleaved rounds (minimal, platform, minimal, platform, ...) of
    seconds/rounds each: whatever else the machine does then weighs on both alike.
    p50/p99 are the worst round's."""
    wards = demo.ward_ids()
    minimal, process = start_minimal(mongo_url, processes)
    baseline, platform = [], []
    try:
        hammer(lambda i: f"{minimal}/wards/warm-up/tickets", 4, 2)
        for _ in range(rounds):
            baseline.append(hammer(lambda i: f"{minimal}/wards/{wards[i % len(wards)]}/tickets", kiosks, seconds / rounds))
            platform.append(hammer(lambda i: f"{base_url}/queue/api/v1/wards/{wards[i % len(wards)]}/tickets",
                                   kiosks, seconds / rounds))
    finally:
        process.terminate()
        process.wait(30)
    baseline, platform = _merge(baseline), _merge(platform)
    return {"kiosks": kiosks, "seconds": seconds, "processes": processes, "minimal": baseline, "platform": platform,
            "ratio": round(platform["per_s"] / baseline["per_s"], 3)}


if __name__ == "__main__":
    from motcua_platform.apiserver import serve

    # The same processes as the platform's API (argv[3], default 1): the ratio compares like with like.
    serve(lambda: minimal_ticket_app(sys.argv[1]), "127.0.0.1", int(sys.argv[2]),
          workers=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
