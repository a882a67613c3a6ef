"""identity's API against the SecantusDB server."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from motcua_common import demo
from motcua_common.outbox import OUTBOX
from motcua_identity import bootstrap
from motcua_identity.api import create_app

WARD = "dn-hai-chau"


def citizen_body(**overrides):
    body = {"national_id": "048090001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1990-05-01",
            "phone": "0905 123 456", "ward_id": WARD, "password": "hoa-sen-2026"}
    body.update(overrides)
    return body


@pytest.fixture
def app(settings):
    from dataclasses import replace

    settings = replace(settings, admin_password="admin-secret-1")
    bootstrap.prepare(settings, demo=True)
    sent = []  # the SMS identity asked notify to send: (to, template, variables, ward_id, key)
    app = create_app(settings, send_reply=lambda *args: sent.append(args))
    app.sent = sent
    return app


@pytest.fixture
def client(app):
    client = app.test_client()
    client.sent = app.sent
    return client


def phone_code(client, phone="+84905123456"):
    """The last one-time code identity asked notify to text to `phone`."""
    return [v["code"] for to, template, v, _w, _k in client.sent if to == phone and template == "phone_code"][-1]


def register(client, **overrides):
    """A web registration, its phone then proven with the code sent there (as a citizen does)."""
    body = citizen_body(**overrides)
    created = client.post("/identity/api/v1/citizens", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["status"] == "pending_phone"
    from motcua_identity.domain import normalise_phone

    verified = client.post(f"/identity/api/v1/citizens/{created.get_json()['citizen_id']}/phone-verification",
                           json={"code": phone_code(client, normalise_phone(body["phone"]))})
    assert verified.status_code == 200, verified.get_json()
    return created


def login(client, username, password):
    return client.post("/identity/api/v1/sessions", json={"username": username, "password": password})


def bearer(response):
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_wards_and_jwks(client):
    wards = client.get("/identity/api/v1/wards").get_json()
    assert {w["ward_id"] for w in wards} == set(demo.ward_ids())
    assert all(set(w) >= {"ward_id", "name", "province", "target_population"} for w in wards)
    keys = client.get("/identity/.well-known/jwks.json").get_json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]


def test_register_login_and_the_event_in_the_outbox(client, service_db):
    created = client.post("/identity/api/v1/citizens", json=citizen_body())
    assert created.status_code == 201, created.get_json()
    citizen_id = created.get_json()["citizen_id"]
    assert created.get_json()["status"] == "pending_phone" and created.get_json()["phone_verified"] is False
    # Not usable before the code sent to the phone is entered ...
    early = login(client, "048090001234", "hoa-sen-2026")
    assert early.status_code == 403 and early.get_json()["code"] == "phone_not_verified"
    verified = client.post(f"/identity/api/v1/citizens/{citizen_id}/phone-verification",
                           json={"code": phone_code(client)})
    assert verified.status_code == 200 and verified.get_json()["status"] == "active"
    outbox = list(service_db("identity")[OUTBOX].find({"routing_key": {"$ne": "WardOpened"}}))  # demo wards: WardOpened
    assert [o["envelope"]["type"] for o in outbox] == ["CitizenRegistered"]
    payload = outbox[0]["envelope"]["payload"]
    assert payload == {"citizen_id": citizen_id, "ward_id": WARD, "channel": "web", "age_band": "18-60"}
    assert "048090001234" not in str(outbox) and "905123456" not in str(outbox)

    for username in ("048090001234", "+84905123456", "0905.123.456"):
        session = login(client, username, "hoa-sen-2026")
        assert session.status_code == 200, session.get_json()
        body = session.get_json()
        assert body["token_type"] == "Bearer" and body["role"] == "citizen" and body["ward_id"] == WARD
        assert body["must_change_password"] is False and body["expires_in"] > 0
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["phone_last4"] == "3456" and "phone" not in claims and "national_id" not in claims
    stored = service_db("identity").citizens.find_one({"_id": citizen_id})
    assert stored["password_hash"].startswith("$argon2id$")


def test_one_account_per_national_id_under_concurrency(client):
    def attempt(i):
        return client.post("/identity/api/v1/citizens", json=citizen_body(phone=f"090512{i:04d}")).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(attempt, range(24)))
    assert codes.count(201) == 1 and codes.count(409) == 23
    again = client.post("/identity/api/v1/citizens", json=citizen_body())
    assert again.status_code == 409 and again.get_json()["code"] == "national_id_taken"


def test_registration_errors_name_each_field(client):
    response = client.post("/identity/api/v1/citizens", json=citizen_body(
        national_id="003090001234", phone="12345", ward_id="nowhere", password="123", full_name="", date_of_birth="1990-13-01"))
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields >= {"phone", "ward_id", "password", "full_name", "date_of_birth"}
    assert client.post("/identity/api/v1/citizens", data="x", content_type="text/plain").status_code == 415
    assert client.post("/identity/api/v1/citizens", data="{bad", content_type="application/json").get_json()["code"] == "invalid_json"


def test_idempotency_key_replays_the_first_answer(client, service_db):
    headers = {"Idempotency-Key": "portal-retry-1"}
    first = client.post("/identity/api/v1/citizens", json=citizen_body(), headers=headers)
    second = client.post("/identity/api/v1/citizens", json=citizen_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert service_db("identity").citizens.count_documents({}) == 1
    other = client.post("/identity/api/v1/citizens", json=citizen_body(full_name="Trần Thị B"), headers=headers)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"


def test_lockout_after_repeated_failures(client):
    register(client)
    for _ in range(4):
        assert login(client, "048090001234", "wrong-password").get_json()["code"] == "invalid_credentials"
    locked = login(client, "048090001234", "wrong-password")
    assert locked.status_code == 423 and locked.get_json()["code"] == "locked"
    assert locked.get_json()["locked_until"] and int(locked.headers["Retry-After"]) > 0
    assert login(client, "048090001234", "hoa-sen-2026").status_code == 423


def test_guessing_the_current_password_through_a_session_locks_the_account(client):
    register(client)
    headers = bearer(login(client, "048090001234", "hoa-sen-2026"))

    def change(current: str):
        return client.put("/identity/api/v1/me/password", json={"current_password": current,
                                                                "new_password": "moi-2026-abc"}, headers=headers)

    for _ in range(4):
        assert change("doan-thu").status_code == 401
    locked = change("doan-thu")
    assert locked.status_code == 423 and locked.get_json()["code"] == "locked"
    assert change("hoa-sen-2026").status_code == 423            # the right one too, until the lock ends
    assert login(client, "048090001234", "hoa-sen-2026").status_code == 423


def test_password_change_and_must_change_password(client, app, service_db):
    register(client)
    headers = bearer(login(client, "048090001234", "hoa-sen-2026"))
    bad = client.put("/identity/api/v1/me/password", json={"current_password": "nope", "new_password": "moi-2026-abc"}, headers=headers)
    assert bad.status_code == 401
    weak = client.put("/identity/api/v1/me/password", json={"current_password": "hoa-sen-2026", "new_password": "1"}, headers=headers)
    assert weak.status_code == 422
    ok = client.put("/identity/api/v1/me/password", json={"current_password": "hoa-sen-2026", "new_password": "moi-2026-abc"}, headers=headers)
    assert ok.status_code == 204
    assert login(client, "048090001234", "moi-2026-abc").status_code == 200
    # An account flagged must_change_password may only change it.
    service_db("identity").citizens.update_one({}, {"$set": {"must_change_password": True}})
    flagged = bearer(login(client, "048090001234", "moi-2026-abc"))
    refused = client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=flagged)
    assert refused.status_code == 403 and refused.get_json()["code"] == "password_change_required"
    assert client.put("/identity/api/v1/me/password", json={"current_password": "moi-2026-abc", "new_password": "lan-3-2026"},
                      headers=flagged).status_code == 204


def test_officers_by_admin_and_ward_admin(client):
    admin = bearer(login(client, "admin", "admin-secret-1"))
    ward_admin = bearer(login(client, "truongbp.haichau", demo.DEMO_STAFF_PASSWORD))
    new = {"username": "canbo.moi", "full_name": "Vũ Thị Hạnh", "ward_id": WARD, "role": "officer", "password": "quay-so-1-2026"}
    assert client.post("/identity/api/v1/officers", json=new, headers=ward_admin).status_code == 201
    assert client.post("/identity/api/v1/officers", json=new, headers=admin).get_json()["code"] == "username_taken"
    other_ward = dict(new, username="canbo.khac", ward_id="hn-ba-dinh")
    assert client.post("/identity/api/v1/officers", json=other_ward, headers=ward_admin).status_code == 403
    assert client.post("/identity/api/v1/officers", json=other_ward, headers=admin).status_code == 201
    officer = bearer(login(client, "canbo.moi", "quay-so-1-2026"))
    assert client.post("/identity/api/v1/officers", json=dict(new, username="x.y.z"), headers=officer).status_code == 403
    assert client.post("/identity/api/v1/officers", json=new).status_code == 401


def test_coverage_counts_registered_adults(client):
    register(client)
    register(client, national_id="048210001234", date_of_birth="2010-02-02", phone="0905000111")
    officer = bearer(login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD))
    body = client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=officer).get_json()
    assert body == {"ward_id": WARD, "registered_18_60": 1, "target_population": 8027, "ratio": round(1 / 8027, 4)}
    other = bearer(login(client, "canbo.badinh", demo.DEMO_STAFF_PASSWORD))
    assert client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=other).status_code == 403
    monitor = bearer(login(client, "giamsat.thanhpho", demo.DEMO_STAFF_PASSWORD))
    assert client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=monitor).status_code == 200


def test_health_readiness_metrics_openapi(client):
    assert client.get("/identity/healthz").get_json()["status"] == "ok"
    assert client.get("/identity/api/v1/openapi.json").get_json()["openapi"].startswith("3.")
    metrics = client.get("/identity/metrics")
    assert metrics.status_code == 200 and b"motcua_http_requests_total" in metrics.data


def test_counter_registration_without_password_texts_a_temporary_one(settings, token):

    bootstrap.prepare(settings, demo=True)
    sent = []
    app = create_app(settings, send_reply=lambda *args: sent.append(args))
    client = app.test_client()
    officer = bearer(login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD))
    body = citizen_body()
    body.pop("password")
    created = client.post("/identity/api/v1/citizens", json=body, headers=officer)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["temporary_password_sent"] is True
    to, template, variables, ward_id, key = sent[-1]
    assert (to, template, ward_id) == ("+84905123456", "temporary_password", WARD)
    session = login(client, "048090001234", variables["password"]).get_json()
    assert session["must_change_password"] is True
    # the web (no officer) must give a password
    web = client.post("/identity/api/v1/citizens", json=dict(body, national_id="048090009999"))
    assert web.status_code == 422
    again = client.post(f"/identity/api/v1/citizens/{created.get_json()['citizen_id']}/temporary-password", headers=officer)
    assert again.status_code == 200 and sent[-1][2]["password"] != variables["password"]
    other = bearer(login(client, "canbo.badinh", demo.DEMO_STAFF_PASSWORD))
    assert client.post(f"/identity/api/v1/citizens/{created.get_json()['citizen_id']}/temporary-password",
                       headers=other).status_code == 404


def test_coverage_gauge_and_population_edits(client):
    register(client)
    admin = bearer(login(client, "admin", "admin-secret-1"))
    assert client.put(f"/identity/api/v1/wards/{WARD}/population", json={"target_population": 4}, headers=admin).status_code == 200
    officer = bearer(login(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD))
    assert client.put(f"/identity/api/v1/wards/{WARD}/population", json={"target_population": 4}, headers=officer).status_code == 403
    assert client.put(f"/identity/api/v1/wards/{WARD}/population", json={"target_population": -1}, headers=admin).status_code == 422
    text = client.get("/identity/metrics").get_data(as_text=True)
    assert f'motcua_citizens_registered_18_60{{ward_id="{WARD}"}} 1.0' in text
    assert f'motcua_ward_population{{ward_id="{WARD}"}} 4.0' in text
    assert f'motcua_registration_coverage_ratio{{ward_id="{WARD}"}} 0.25' in text


def test_coverage_is_counted_at_most_once_a_minute_whatever_the_scrapes(app, monkeypatch):
    """The numerator is an aggregation over every citizen: a scrape reuses the last count until
    it is CACHE_SECONDS old, and a database that does not answer keeps the last figures."""
    from motcua_identity import api as identity_api
    from motcua_identity import store, wards

    deps = app.extensions["motcua"]
    now = [0.0]
    collector = identity_api.CoverageCollector(deps, clock=lambda: now[0])
    reads = []
    real = wards.coverage_by_ward
    monkeypatch.setattr(wards, "coverage_by_ward", lambda d: reads.append(1) or real(d))

    def series():
        return {(f.name, s.labels.get("ward_id")): s.value for f in collector.collect() for s in f.samples}

    first = series()
    assert first[("motcua_ward_population", WARD)] > 0 and (("motcua_registration_coverage_ratio", WARD) in first)
    assert set(first) == set(series()) and len(reads) == 1
    store.set_target_population(deps.db, WARD, 9)
    now[0] = 59.0
    assert series()[("motcua_ward_population", WARD)] == first[("motcua_ward_population", WARD)] and len(reads) == 1
    now[0] = 60.0
    assert series()[("motcua_ward_population", WARD)] == 9 and len(reads) == 2
    monkeypatch.setattr(wards, "coverage_by_ward", lambda d: (_ for _ in ()).throw(RuntimeError("no primary")))
    now[0] = 200.0
    assert series()[("motcua_ward_population", WARD)] == 9   # the last figures stand


ROLES = ["anonymous", "citizen", "officer", "ward_admin", "monitor", "admin"]


@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(client, role):
    """Who may do what, per role and ward (officers and ward admins of dn-hai-chau)."""
    register(client)
    logins = {"citizen": ("048090001234", "hoa-sen-2026"), "officer": ("canbo.haichau", demo.DEMO_STAFF_PASSWORD),
              "ward_admin": ("truongbp.haichau", demo.DEMO_STAFF_PASSWORD),
              "monitor": ("giamsat.thanhpho", demo.DEMO_STAFF_PASSWORD), "admin": ("admin", "admin-secret-1")}
    headers = bearer(login(client, *logins[role])) if role in logins else {}
    expected = {
        # endpoint: roles allowed
        ("GET", f"/identity/api/v1/wards/{WARD}/coverage"): {"officer", "ward_admin", "monitor", "admin"},
        ("GET", "/identity/api/v1/wards/hn-ba-dinh/coverage"): {"monitor", "admin"},
        ("PUT", f"/identity/api/v1/wards/{WARD}/population"): {"admin"},
        ("POST", "/identity/api/v1/officers"): {"ward_admin", "admin"},
    }
    bodies = {"PUT": {"target_population": 9000},
              "POST": {"username": f"cb.{role}", "full_name": "Lê Văn Tâm", "ward_id": WARD, "role": "officer",
                       "password": "quay-so-2-2026"}}
    for (method, path), allowed in expected.items():
        response = client.open(path, method=method, json=bodies.get(method), headers=headers)
        if role in allowed:
            assert response.status_code in (200, 201), (method, path, role, response.get_json())
        else:
            assert response.status_code == (401 if role == "anonymous" else 403), (method, path, role)


def test_self_registrations_are_limited_per_address_but_not_at_the_counter(settings):
    from dataclasses import replace

    from motcua_common import demo

    settings = replace(settings, registrations_per_client_hour=3)
    bootstrap.prepare(settings, demo=True)
    client = create_app(settings, send_reply=lambda *args: None).test_client()
    bodies = [citizen_body(national_id=f"04809000{n:04d}", phone=f"0905 123 4{n:02d}") for n in range(5)]
    answers = [client.post("/identity/api/v1/citizens", json=body).status_code for body in bodies[:4]]
    assert answers == [201, 201, 201, 429]
    refused = client.post("/identity/api/v1/citizens", json=bodies[3])
    assert refused.status_code == 429 and refused.get_json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    officer = next(username for username, _name, ward, role in demo.DEMO_STAFF if role == "officer" and ward == WARD)
    at_counter = bearer(login(client, officer, demo.DEMO_STAFF_PASSWORD))
    assert client.post("/identity/api/v1/citizens", json=bodies[4], headers=at_counter).status_code == 201
