"""Issue 21 for identity: the lockout is no lever, and argon2 does not blow the memory limit.

A stranger typing an officer's guessable username (canbo.<ward>) with wrong passwords locks
only their own address out of it: the counter PC keeps signing in. An unknown username is
answered exactly as a known one — 401 four times, then 423 from that address. And at most
MOTCUA_MAX_CONCURRENT_HASHES argon2 hashes run at once in a process."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from motcua_common import demo
from motcua_identity import bootstrap, store
from motcua_identity.api import create_app

COUNTER_PC = "10.20.0.5"
STRANGER = "203.0.113.9"


@pytest.fixture
def client(settings):
    bootstrap.prepare(settings, demo=True)
    return create_app(settings, send_reply=lambda *args: None).test_client()


def login(client, username, password, address):
    return client.post("/identity/api/v1/sessions", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_a_stranger_cannot_lock_an_officer_out_of_the_counter(client):
    answers = [login(client, "canbo.haichau", f"doan-{i}", STRANGER) for i in range(6)]
    assert [a.status_code for a in answers] == [401] * 4 + [423, 423]
    assert answers[4].get_json()["code"] == "locked" and int(answers[4].headers["Retry-After"]) > 0
    # The stranger's address stays locked, even with the right password ...
    assert login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD, STRANGER).status_code == 423
    # ... while the counter PC signs in as usual.
    session = login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD, COUNTER_PC)
    assert session.status_code == 200 and session.get_json()["role"] == "officer"


def test_unknown_and_known_usernames_are_answered_alike(client, service_db):
    known = [login(client, "canbo.haichau", "sai-mat-khau", STRANGER) for _ in range(5)]
    unknown = [login(client, "canbo.khongco", "sai-mat-khau", STRANGER) for _ in range(5)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 401, 401, 423]
    assert [r.get_json()["code"] for r in known] == [r.get_json()["code"] for r in unknown]
    assert {r.get_json()["detail"] for r in known[:4]} == {r.get_json()["detail"] for r in unknown[:4]}
    assert set(known[4].get_json()) == set(unknown[4].get_json())
    # Nothing stored names the username or the address in clear.
    failures = list(service_db("identity").login_failures.find())
    assert failures and "canbo" not in str(failures) and STRANGER not in str(failures)


def test_a_deactivated_officer_is_answered_like_an_unknown_username(client, token):
    admin_session = client.post("/identity/api/v1/sessions", json={"username": "canbo.haichau",
                                                                    "password": demo.DEMO_STAFF_PASSWORD}).get_json()
    assert admin_session["role"] == "officer"
    officer = store.officer_by_username(client.application.extensions["motcua"].db, "canbo.haichau")
    client.application.extensions["motcua"].db.officers.update_one({"_id": officer["_id"]}, {"$set": {"active": False}})
    answers = [login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD, STRANGER).status_code for _ in range(5)]
    assert answers == [401] * 4 + [423]


def test_a_successful_sign_in_clears_the_failures_of_that_address(client):
    for _ in range(4):
        assert login(client, "canbo.haichau", "sai", COUNTER_PC).status_code == 401
    assert login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD, COUNTER_PC).status_code == 200
    for _ in range(4):
        assert login(client, "canbo.haichau", "sai", COUNTER_PC).status_code == 401


def test_at_most_the_configured_number_of_hashes_run_at_once(monkeypatch):
    """16 request threads verifying at once: never more than MOTCUA_MAX_CONCURRENT_HASHES
    argon2 computations (64 MiB each) at the same moment."""
    assert store.max_concurrent_hashes({}) == 2
    assert store.max_concurrent_hashes({"MOTCUA_MAX_CONCURRENT_HASHES": "3"}) == 3
    assert store.max_concurrent_hashes({"MOTCUA_MAX_CONCURRENT_HASHES": "nonsense"}) == 2
    assert store.max_concurrent_hashes({"MOTCUA_MAX_CONCURRENT_HASHES": "0"}) == 1

    running, peak, lock = [0], [0], threading.Lock()

    class SlowHasher:
        """Stands in for argon2: counts how many computations overlap."""

        def _work(self):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

        def hash(self, password):
            self._work()
            return "$argon2id$stand-in"

        def verify(self, password_hash, password):
            self._work()
            return True

    gate = store.HashGate(2)
    monkeypatch.setattr(store, "_hasher", SlowHasher())
    monkeypatch.setattr(store, "hash_gate", gate)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: store.verify_password("h", "p") if i % 2 else store.hash_password("p"),
                                range(64)))
    assert len(results) == 64
    assert peak[0] == 2 and gate.peak == 2 and gate.in_use == 0
