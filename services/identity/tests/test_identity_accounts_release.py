"""Recovering an account at the counter (issue 19): someone registered another person's
CCCD. The officer checks the card and releases it: POST /citizens/by-national-id/release
{national_id, reason}. The wrong account is deactivated and its sessions refused, the
CCCD is free for its real owner to register, and the release is audited without the CCCD."""
from __future__ import annotations

import pytest

from motcua_common import demo
from motcua_common.outbox import OUTBOX
from motcua_identity import bootstrap
from motcua_identity.api import create_app
from motcua_common.audit import settle as chain_audit

WARD = "dn-hai-chau"
NATIONAL_ID = "048090001234"
URL = "/identity/api/v1/citizens/by-national-id/release"


@pytest.fixture
def client(settings):
    bootstrap.prepare(settings, demo=True)
    return create_app(settings, send_reply=lambda *args: None, web_phone_proof=False).test_client()


def session(client, username, password):
    answer = client.post("/identity/api/v1/sessions", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def register(client, phone, password, full_name="Nguyễn Văn An"):
    created = client.post("/identity/api/v1/citizens", json={
        "national_id": NATIONAL_ID, "full_name": full_name, "date_of_birth": "1990-05-01", "phone": phone,
        "ward_id": WARD, "password": password})
    assert created.status_code == 201, created.get_json()
    return created.get_json()["citizen_id"]


def test_the_officer_releases_a_cccd_taken_by_someone_else(client, service_db):
    wrong_id = register(client, "0977 000 111", "ke-gian-2026", "Kẻ Mạo Danh")
    impostor = session(client, NATIONAL_ID, "ke-gian-2026")
    officer = session(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD)

    # The real owner cannot register: the CCCD is taken.
    taken = client.post("/identity/api/v1/citizens", json={
        "national_id": NATIONAL_ID, "full_name": "Nguyễn Văn An", "date_of_birth": "1990-05-01",
        "phone": "0905 123 456", "ward_id": WARD, "password": "hoa-sen-2026"})
    assert taken.status_code == 409

    released = client.post(URL, json={"national_id": "048 090 001 234", "reason": "Đã đối chiếu thẻ CCCD: người "
                                      "đăng ký không phải chủ thẻ"}, headers=officer)
    assert released.status_code == 200, released.get_json()
    assert released.get_json() == {"citizen_id": wrong_id, "released": True, "sessions_revoked": True}

    # The wrong account: its session refused, no sign-in by CCCD or by phone.
    assert client.put("/identity/api/v1/me/password", json={"current_password": "ke-gian-2026",
                                                             "new_password": "moi-2026-abc"},
                      headers=impostor).status_code == 401
    for username in (NATIONAL_ID, "0977000111"):
        assert client.post("/identity/api/v1/sessions", json={"username": username, "password": "ke-gian-2026"}
                           ).status_code == 401
    db = service_db("identity")
    wrong = db.citizens.find_one({"_id": wrong_id})
    assert wrong["active"] is False and wrong["status"] == "released" and wrong["national_id"] != NATIONAL_ID
    revoked = [o["envelope"] for o in db[OUTBOX].find({"routing_key": "SessionsRevoked"})]
    assert [e["payload"]["reason"] for e in revoked] == ["account_released"]
    chain_audit(db)
    [entry] = list(db.audit_log.find({"action": "release_national_id"}))
    assert entry["subject_id"] == wrong_id and NATIONAL_ID not in str(entry)

    # The real owner registers and signs in.
    owner_id = register(client, "0905 123 456", "hoa-sen-2026")
    assert owner_id != wrong_id
    assert client.post("/identity/api/v1/sessions", json={"username": NATIONAL_ID, "password": "hoa-sen-2026"}
                       ).status_code == 200


def test_only_staff_release_and_the_request_is_checked(client):
    register(client, "0977 000 111", "ke-gian-2026")
    citizen = session(client, NATIONAL_ID, "ke-gian-2026")
    body = {"national_id": NATIONAL_ID, "reason": "Đã đối chiếu thẻ"}
    assert client.post(URL, json=body).status_code == 401
    assert client.post(URL, json=body, headers=citizen).status_code == 403
    officer = session(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD)
    missing = client.post(URL, json={"national_id": NATIONAL_ID}, headers=officer)
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["field"] == "reason"
    wide = client.post(URL, json={"national_id": "０４８０９０００１２３４", "reason": "Đã đối chiếu thẻ"}, headers=officer)
    assert wide.status_code == 422 and "0–9" in wide.get_json()["errors"][0]["message"]
    unknown = client.post(URL, json={"national_id": "048090009999", "reason": "Đã đối chiếu thẻ"}, headers=officer)
    assert unknown.status_code == 404
    # Another ward's officer may release it too: the owner comes to their own ward's counter.
    other = session(client, "canbo.badinh", demo.DEMO_STAFF_PASSWORD)
    assert client.post(URL, json=body, headers=other).status_code == 200
