"""Idempotency-Key against the real database: replay, conflicting reuse, and the crash
between a committed change and its stored answer (found by fault test 9)."""
from __future__ import annotations

import pytest
from flask import Flask

from motcua_common.events import new_event
from motcua_common.http import Problem, _register_error_handlers, ensure_idempotency_index, idempotent
from motcua_common.outbox import IDEMPOTENCY, commit


@pytest.fixture
def app(service_db):
    db = service_db("queue")
    ensure_idempotency_index(db)
    app = Flask("idempotency_probe")
    _register_error_handlers(app)
    crash_after_commit = {"on": False}

    @app.post("/tickets")
    def issue():
        def handler():
            number = db.tickets.count_documents({}) + 1
            event = new_event("TicketIssued", "w1", {"ticket_id": f"t{number}", "number": f"A{number:03d}"})
            commit(db, lambda s: db.tickets.insert_one({"_id": f"t{number}"}, session=s), [event])
            if crash_after_commit["on"]:
                raise RuntimeError("the database went away before the answer was stored")
            return {"ticket_id": f"t{number}"}, 201

        return idempotent(db, "tickets", handler)

    app.db, app.crash = db, crash_after_commit
    return app


def test_the_same_key_replays_and_another_body_is_refused(app):
    client = app.test_client()
    first = client.post("/tickets", json={"service_code": "A"}, headers={"Idempotency-Key": "k1"})
    again = client.post("/tickets", json={"service_code": "A"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/tickets", json={"service_code": "B"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert app.db.tickets.count_documents({}) == 1


def test_a_crash_after_the_commit_never_repeats_the_change(app):
    client = app.test_client()
    app.crash["on"] = True
    lost = client.post("/tickets", json={"service_code": "A"}, headers={"Idempotency-Key": "k2"})
    assert lost.status_code == 500
    assert app.db[IDEMPOTENCY].find_one()["state"] == "committed"
    app.crash["on"] = False
    retry = client.post("/tickets", json={"service_code": "A"}, headers={"Idempotency-Key": "k2"})
    assert retry.status_code == 409 and retry.get_json()["code"] == "idempotency_outcome_lost"
    assert app.db.tickets.count_documents({}) == 1


def test_a_failure_before_the_commit_releases_the_key(app, monkeypatch):
    client = app.test_client()
    calls = {"n": 0}
    original = app.db.tickets.insert_one

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise Problem(503, "service_unavailable", "down")
        return original(*args, **kwargs)

    monkeypatch.setattr(type(app.db.tickets), "insert_one", lambda self, *a, **k: flaky(*a, **k))
    assert client.post("/tickets", json={}, headers={"Idempotency-Key": "k3"}).status_code == 503
    assert client.post("/tickets", json={}, headers={"Idempotency-Key": "k3"}).status_code == 201
