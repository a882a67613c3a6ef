"""identity's audit trail and the citizen's data export, through the API against the
SecantusDB server: security events and officers' actions land in the hash-chained
audit_log (never a CCCD, phone or password); a staff lookup of a person by CCCD is
recorded whether it finds someone or not; a citizen downloads what identity holds about
them (Decree 13/2023) without other people's data; the chain verifies."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from motcua_common import audit, demo
from motcua_common.auth import Principal
from motcua_identity import accounts, bootstrap
from motcua_identity.api import create_app
from motcua_identity.deps import build_deps

WARD = "dn-hai-chau"
NATIONAL_ID = "048090001234"


@pytest.fixture
def settings_(settings):
    return replace(settings, admin_password="admin-secret-1", sms_inbound_token="gw", sms_registration_ward=WARD)


@pytest.fixture
def app(settings_):
    bootstrap.prepare(settings_, demo=True)
    sent = []
    app = create_app(settings_, send_reply=lambda *args: sent.append(args), dossier_status=lambda *a: None)
    app.sent = sent
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(client, username, password=demo.DEMO_STAFF_PASSWORD):
    response = client.post("/identity/api/v1/sessions", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def registered_citizen(client, app, service_db) -> tuple[str, dict, str]:
    """A citizen registered by SMS who changed the temporary password: (id, token, password)."""
    sent = client.post("/identity/api/v1/sms/inbound", json={"from": "+84935111222",
                                                             "text": f"DK {NATIONAL_ID} Nguyen Van An 01/05/1990"},
                       headers={"X-Gateway-Token": "gw"})
    assert sent.get_json()["outcome"] == "registered"
    citizen_id = service_db("identity").citizens.find_one({"national_id": NATIONAL_ID})["_id"]
    temporary = app.sent[-1][2]["password"]
    token = bearer(client, NATIONAL_ID, temporary)
    changed = client.put("/identity/api/v1/me/password", headers=token,
                         json={"current_password": temporary, "new_password": "an-hai-chau-1990"})
    assert changed.status_code == 204, changed.get_json()
    time.sleep(1.05 - (time.time() % 1))
    return citizen_id, bearer(client, NATIONAL_ID, "an-hai-chau-1990"), "an-hai-chau-1990"


def test_security_events_go_to_the_chain_without_personal_values(client, app, service_db):
    citizen_id, _token, password = registered_citizen(client, app, service_db)
    db = service_db("identity")
    assert db.audit.count_documents({}) == 0  # the old, editable collection is no longer written
    actions = [r["action"] for r in audit.records(db)]
    assert "sms_register" in actions and "login" in actions and "password_change" in actions
    everything = str(list(db.audit_log.find()))
    for secret in (NATIONAL_ID, "935111222", password, "Nguyen Van An"):
        assert secret not in everything
    login = db.audit_log.find_one({"action": "login", "subject_id": citizen_id, "outcome": "ok"})
    assert login["actor_id"] == citizen_id and login["client_hash"] and "client" not in login
    assert audit.verify(db) == (True, None, db.audit_log.count_documents({"_id": {"$type": "number"}}))


def test_an_officers_action_names_the_officer_and_role(client, app, service_db):
    citizen_id, _token, _ = registered_citizen(client, app, service_db)
    officer = bearer(client, "canbo.haichau")
    moved = client.put("/identity/api/v1/citizens/by-national-id", headers=officer,
                       json={"national_id": NATIONAL_ID, "phone": "0912 345 678"})
    assert moved.status_code == 200, moved.get_json()
    db = service_db("identity")
    officer_id = db.officers.find_one({"username": "canbo.haichau"})["_id"]
    audit.settle(db)
    lookup = db.audit_log.find_one({"action": "find_citizen_by_national_id"})
    assert (lookup["actor_id"], lookup["actor_role"], lookup["subject_id"], lookup["outcome"], lookup["ward_id"]) == (
        officer_id, "officer", citizen_id, "found", WARD)
    corrected = db.audit_log.find_one({"action": "correct_citizen"})
    assert corrected["actor_id"] == officer_id and corrected["subject_id"] == citizen_id
    assert corrected["details"]["changed"] == ["phone"]
    assert corrected["_id"] > lookup["_id"]  # the lookup first, then what was done
    assert NATIONAL_ID not in str(lookup) and "912345678" not in str(corrected)
    # a lookup that finds nobody is recorded too
    missing = client.put("/identity/api/v1/citizens/by-national-id", headers=officer,
                         json={"national_id": "048090009999", "phone": "0905000111"})
    assert missing.status_code == 404
    audit.settle(db)
    assert db.audit_log.count_documents({"action": "find_citizen_by_national_id", "outcome": "not_found",
                                         "actor_id": officer_id}) == 1
    assert audit.verify(db)[0] is True


def test_dossiers_lookup_by_cccd_is_audited_with_the_officer_it_names(app, client, service_db, settings_):
    citizen_id, _token, _ = registered_citizen(client, app, service_db)
    deps = build_deps(settings_, send_reply=lambda *a: None, dossier_status=lambda *a: None)
    found = accounts.find_citizen(deps, NATIONAL_ID, {"officer_id": "officer-7", "role": "officer", "ward_id": WARD})
    assert found["citizen_id"] == citizen_id
    assert accounts.find_citizen(deps, "048090009999") is None
    db = service_db("identity")
    audit.settle(db)
    asked = list(db.audit_log.find({"action": "find_citizen_by_national_id"}).sort("_id", 1))
    assert [(r["actor_id"], r["actor_role"], r["subject_id"], r["outcome"]) for r in asked] == [
        ("officer-7", "officer", citizen_id, "found"), ("service:dossier", None, None, "not_found")]
    assert NATIONAL_ID not in str(asked) and "048090009999" not in str(asked)


def test_a_citizen_exports_their_own_data(client, app, service_db):
    citizen_id, token, password = registered_citizen(client, app, service_db)
    officer = bearer(client, "canbo.haichau")
    assert client.put("/identity/api/v1/citizens/by-national-id", headers=officer,
                      json={"national_id": NATIONAL_ID, "phone": "0912 345 678"}).status_code == 200
    time.sleep(1.05 - (time.time() % 1))
    token = bearer(client, NATIONAL_ID, password)  # the correction ended the earlier session
    response = client.get("/identity/api/v1/me/export", headers=token)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    export = response.get_json()
    account = export["account"]
    assert account["citizen_id"] == citizen_id and account["national_id"] == NATIONAL_ID
    assert account["full_name"] == "Nguyen Van An" and account["phone"] == "+84912345678"
    assert "password_hash" not in account and "failed_logins" not in account
    assert export["registration"]["channel"] == "sms" and export["registration"]["ward_id"] == WARD
    assert export["consents"] == [] and export["dossiers"]["href"] == "/dossier/api/v1/dossiers"
    assert export["sessions_revoked"]["reason"] == "contact_changed"
    seen = [(e["action"], e["by"]) for e in export["audit"]]
    assert ("sms_register", "self") in seen and ("login", "self") in seen
    assert ("find_citizen_by_national_id", "officer") in seen and ("correct_citizen", "officer") in seen
    officer_id = service_db("identity").officers.find_one({"username": "canbo.haichau"})["_id"]
    assert officer_id not in response.get_data(as_text=True)  # no other person's id
    assert "canbo.haichau" not in response.get_data(as_text=True)
    # the export itself is recorded
    audit.settle(service_db("identity"))
    assert service_db("identity").audit_log.count_documents({"action": "export_own_data", "subject_id": citizen_id}) == 1


def test_only_a_citizen_exports_and_only_their_own(client):
    assert client.get("/identity/api/v1/me/export").status_code == 401
    officer = bearer(client, "canbo.haichau")
    refused = client.get("/identity/api/v1/me/export", headers=officer)
    assert refused.status_code == 403


def test_the_old_audit_collection_expires_with_the_audit_retention(app, service_db):
    indexes = service_db("identity").audit.index_information()
    assert indexes["at_1"]["expireAfterSeconds"] == audit.retention_days("audit", env={}) * 86400
    assert service_db("identity").audit_log.index_information()["subject"]


def test_a_principal_acting_is_kept_with_its_role(settings_, service_db):
    bootstrap.prepare(settings_)
    deps = build_deps(settings_, send_reply=lambda *a: None, dossier_status=lambda *a: None)
    accounts.audit(deps, "set_population", by=Principal(subject="admin-1", role="admin", ward_id=None), ward_id=WARD)
    [record] = list(audit.records(service_db("identity"), {"action": "set_population"}))
    assert (record["actor_id"], record["actor_role"], record["ward_id"], record["subject_id"]) == (
        "admin-1", "admin", WARD, None)
