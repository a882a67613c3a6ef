"""(3) Dossier submitted → SMS at the gateway, at a steady rate of online submissions: the
delay from the 201 of POST /dossiers to the gateway receiving the 'submitted' SMS."""
from __future__ import annotations

import threading
import time

from motcua_platform.simulate import Api, Outcomes, fill_form, percentile, prepare_wards


def run(base_url: str, gateway, per_second: float = 10, seconds: float = 30) -> dict:
    import random

    api = Api(base_url, Outcomes())
    wards = prepare_wards(api, 2, random.Random(9), None, None)
    procedures = [p for p in api.call("list_procedures", "GET", "/dossier/api/v1/procedures").json() if p["level"] >= 3]
    submitted: list[tuple[str, float]] = []
    lock = threading.Lock()

    def submit(n: int):
        ward = wards[n % len(wards)]
        citizen, procedure = ward.citizens[n % len(ward.citizens)], procedures[n % len(procedures)]
        response = api.call("submit", "POST", "/dossier/api/v1/dossiers", headers=citizen["headers"],
                            json={"procedure_code": procedure["code"], "ward_id": ward.ward_id, "form": fill_form(procedure)})
        if response is not None:
            with lock:
                submitted.append((response.json()["receipt_code"], time.time()))

    threads, start = [], time.monotonic()
    for n in range(int(per_second * seconds)):  # open loop: the rate does not slow when the platform does
        time.sleep(max(0.0, start + n / per_second - time.monotonic()))
        t = threading.Thread(target=submit, args=(n,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    delays, deadline, lost = [], time.time() + 120, 0
    for code, at in submitted:
        while (arrived := gateway.first_arrival(code)) is None and time.time() < deadline:
            time.sleep(0.1)
        if arrived is None:
            lost += 1
        else:
            delays.append(arrived - at)
    submit_lat = api.outcomes.latencies["submit"]
    return {"rate_per_s": per_second, "dossiers": len(submitted), "errors": dict(api.outcomes.errors), "lost": lost,
            "p50_ms": round(percentile(delays, 50) * 1000, 1), "p99_ms": round(percentile(delays, 99) * 1000, 1),
            "submit_p50_ms": round(percentile(submit_lat, 50) * 1000, 1),
            "submit_p99_ms": round(percentile(submit_lat, 99) * 1000, 1)}
