"""A kiosk for the fault tests: one thread issuing tickets through a service's Flask app
(its test client) until stopped, each request with its own Idempotency-Key, retried with
it after a 503 as the contract tells clients; every answer counted."""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter


class Kiosk:
    """One thread issuing tickets until stopped; each request retried with its own key."""

    def __init__(self, app, ward_id: str, headers: dict):
        self.app, self.ward_id, self.headers = app, ward_id, headers
        self.statuses: Counter = Counter()
        self.problems: Counter = Counter()
        self.tickets: dict[str, str] = {}  # Idempotency-Key -> ticket_id, once acknowledged
        self.indeterminate: set[str] = set()
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Kiosk":
        self._thread.start()
        return self

    def _run(self) -> None:
        client = self.app.test_client()
        while not self._stop.is_set():
            key = uuid.uuid4().hex
            while True:
                r = client.post(f"/queue/api/v1/wards/{self.ward_id}/tickets", json={"service_code": "A", "priority": "normal"},
                                headers={**self.headers, "Idempotency-Key": key})
                code = (r.get_json(silent=True) or {}).get("code")
                with self._lock:
                    self.statuses[r.status_code] += 1
                    if r.status_code != 201:
                        self.problems[(r.status_code, code)] += 1
                if r.status_code == 201:
                    with self._lock:
                        self.tickets[key] = r.get_json()["ticket_id"]
                    break
                if r.status_code == 409 and code == "idempotency_outcome_lost":
                    with self._lock:
                        self.indeterminate.add(key)
                    break
                if r.status_code == 409 and code == "idempotency_in_progress":
                    # The claim of an attempt that failed with the database (its release failed
                    # too) waits out its lease; its change never committed (the commit marks it),
                    # so the citizen presses again: a new key. The test checks no ticket of an
                    # abandoned key exists (unexpected).
                    break
                if r.status_code != 503:
                    self.failure = f"{r.status_code} {r.get_data(as_text=True)[:300]}"
                    self._stop.set()
                    return
                if self._stop.wait(0.1):
                    return  # stopped while waiting for the database: this key stays unacknowledged
            time.sleep(0.01)

    def count(self) -> int:
        with self._lock:
            return len(self.tickets)

    def refused(self) -> int:
        with self._lock:
            return sum(n for (status, _code), n in self.problems.items() if status == 503)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the kiosk was still waiting for an answer"
