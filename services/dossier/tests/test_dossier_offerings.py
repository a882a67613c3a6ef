"""Opening a real ward (issue 17, dossier's part): the wards record from WardOpened (once
per event, preferred over identity's RPC), the procedures a ward takes online (nothing
until its administrator switches them on; 409 not_offered_online for a citizen; the
counter never blocked; the demo wards take every level 3-4 procedure), the administrator's
page /dossier/admin/{ward}, the portal saying per ward what is online — and the real
dossier worker on the real broker: WardOpened delivered twice, SessionsRevoked, for_sms."""
from __future__ import annotations

import subprocess
import sys

import pytest

from motcua_common import rpc
from motcua_common.events import new_event, parse_envelope
from motcua_common.outbox import commit
from motcua_common.relay import Relay
from motcua_common.revocations import COLLECTION as REVOKED
from motcua_common.web_session import CSRF_COOKIE, SESSION_COOKIE
from motcua_dossier import bootstrap, store, wards as dossier_wards
from motcua_dossier.deps import build_deps
from motcua_dossier.ward_directory import WardDirectory
from motcua_testing.fixtures import settings_env, wait_for
from motcua_testing.pagecheck import page_of

WARD = "dn-hai-chau"
NEW_WARD = "dn-hoa-xuan"
URL = "/dossier/api/v1"
OPENED = {"ward_id": NEW_WARD, "official_code": "20305", "name": "Phường Hòa Xuân", "province": "Thành phố Đà Nẵng",
          "province_code": "48", "kind": "phường", "target_population": 7000}


@pytest.fixture
def new_ward(wards, deps):
    """A ward identity opened (it answers for it) and dossier heard of (WardOpened), without the demo."""
    wards.known[NEW_WARD] = {"ward_id": NEW_WARD, "name": OPENED["name"], "province": OPENED["province"]}
    dossier_wards.on_ward_opened(deps, None, parse_envelope(new_event("WardOpened", NEW_WARD, OPENED)))
    return NEW_WARD


def put(client, ward_id, code, headers, **body):
    return client.put(f"{URL}/wards/{ward_id}/procedures/{code}", json=body, headers=headers)


def submit_to(client, headers, ward_id, forms, **more):
    return client.post(f"{URL}/dossiers", headers=headers, json={
        "procedure_code": "HT-XNHN", "ward_id": ward_id, "form": forms["marriage_status"], **more})


def offered(client, ward_id) -> dict:
    return {p["code"]: p for p in client.get(f"{URL}/wards/{ward_id}/procedures").json}


# ---------------------------------------------------------------- WardOpened
def test_ward_opened_is_recorded_once_and_known_without_asking_identity(deps, dossier_db, settings, monkeypatch):
    event = parse_envelope(new_event("WardOpened", NEW_WARD, OPENED))
    assert dossier_wards.on_ward_opened(deps, None, event) == "processed"
    assert dossier_wards.on_ward_opened(deps, None, event) == "duplicate"
    [record] = list(dossier_db[store.WARDS].find({"_id": NEW_WARD}))
    assert record["official_code"] == "20305" and record["name"] == "Phường Hòa Xuân" and record["kind"] == "phường"

    def no_identity(*args, **kwargs):
        raise rpc.RpcUnavailable("identity is not running")

    monkeypatch.setattr(rpc, "call", no_identity)
    directory = build_deps(settings, db=dossier_db).wards   # the real directory, with the record
    assert directory.ward(NEW_WARD) == {"ward_id": NEW_WARD, "name": "Phường Hòa Xuân",
                                        "province": "Thành phố Đà Nẵng", "official_code": "20305"}
    with pytest.raises(rpc.RpcUnavailable):   # a ward it has not heard of: identity is asked, as before
        directory.ward("dn-chua-nghe")
    assert WardDirectory(settings).local is None


# ---------------------------------------------------------------- what a ward takes online
def test_demo_wards_take_every_level_3_and_4_procedure_online(client, dossier_db, settings):
    catalog = offered(client, WARD)
    assert catalog["HT-XNHN"]["online"] is True and catalog["HT-XNHN"]["online_since"]
    assert all(p["online"] == (p["level"] >= 3) for p in catalog.values())
    assert all(p["online_possible"] == (p["level"] >= 3) for p in catalog.values())
    before = dossier_db[store.WARD_PROCEDURES].count_documents({})
    bootstrap.prepare(settings, demo=True)   # idempotent
    assert dossier_db[store.WARD_PROCEDURES].count_documents({}) == before


def test_a_ward_opened_without_the_demo_takes_nothing_online_until_switched_on(client, new_ward, token, citizens,
                                                                             forms, dossier_db):
    assert not any(p["online"] for p in offered(client, new_ward).values())
    citizen = token("citizen", None, subject="cit-lan")
    refused = submit_to(client, citizen, new_ward, forms)
    assert refused.status_code == 409 and refused.json["code"] == "not_offered_online"
    assert refused.json["detail"].startswith("Phường Hòa Xuân chưa nhận hồ sơ trực tuyến thủ tục này")
    assert "vui lòng nộp tại Bộ phận một cửa" in refused.json["detail"]
    assert dossier_db.dossiers.count_documents({}) == 0
    # The counter is never blocked.
    counter = submit_to(client, token("officer", new_ward, subject="off-hx-1"), new_ward, forms,
                        citizen_national_id="048185000777")
    assert counter.status_code == 201 and counter.json["channel"] == "counter"

    switched = put(client, new_ward, "HT-XNHN", token("ward_admin", new_ward, subject="adm-hx"),
                   online=True, since="2026-03-02")
    assert switched.status_code == 200
    assert switched.json["online"] is True and switched.json["online_since"] == "2026-03-02"
    assert submit_to(client, citizen, new_ward, forms).status_code == 201
    # Switched on again without a date: keeps the first one.
    again = put(client, new_ward, "HT-XNHN", token("admin"), online=True)
    assert again.json["online_since"] == "2026-03-02"
    off = put(client, new_ward, "HT-XNHN", token("admin"), online=False)
    assert off.status_code == 200 and off.json["online"] is False and off.json["online_since"] is None
    assert submit_to(client, citizen, new_ward, forms).json["code"] == "not_offered_online"


def test_who_may_switch_and_what_is_refused(client, new_ward, token, wards):
    admin = token("ward_admin", new_ward)
    assert put(client, new_ward, "HT-XNHN", {}, online=True).status_code == 401
    for someone in (token("officer", new_ward), token("leader", new_ward), token("ward_admin", WARD),
                    token("citizen"), token("monitor")):
        refused = put(client, new_ward, "HT-XNHN", someone, online=True)
        assert refused.status_code == 403, refused.json
    for body in ({}, {"online": "yes"}, {"online": 1}, {"online": True, "since": "2026-13-01"},
                 {"online": True, "since": "02/03/2026"}, {"online": True, "since": 20260302}):
        bad = put(client, new_ward, "HT-XNHN", admin, **body)
        assert bad.status_code == 422 and bad.json["code"] == "validation_failed", body
    level_2 = next(code for code, p in offered(client, new_ward).items() if p["level"] == 2)
    counter_only = put(client, new_ward, level_2, admin, online=True)
    assert counter_only.status_code == 422 and counter_only.json["errors"][0]["field"] == "online"
    assert put(client, new_ward, "KHONG-CO", admin, online=True).status_code == 404
    unknown = put(client, "dn-khong-co", "HT-XNHN", token("admin"), online=True)
    assert unknown.status_code == 404 and unknown.json["code"] == "ward_not_found"
    assert client.get(f"{URL}/wards/dn-khong-co/procedures").json["code"] == "ward_not_found"
    wards.unavailable = True
    down = put(client, "dn-chua-biet", "HT-XNHN", token("admin"), online=True)
    assert down.status_code == 503 and down.json["code"] == "dependency_unavailable"


# ---------------------------------------------------------------- the administrator's page
def test_the_ward_administrator_switches_procedures_on_the_page(client, new_ward, signing_key, forms, token):
    page_url = f"/dossier/admin/{new_ward}"
    anonymous = client.get(page_url)
    assert anonymous.status_code == 303 and anonymous.headers["Location"].startswith("/identity/login?next=")
    assert page_url in anonymous.headers["Location"]

    client.set_cookie(SESSION_COOKIE, signing_key.issue("off-hx-1", "officer", new_ward, 600))
    assert client.get(page_url).status_code == 403
    client.set_cookie(SESSION_COOKIE, signing_key.issue("adm-lc", "ward_admin", "dn-lien-chieu", 600))
    assert client.get(page_url).status_code == 403

    client.set_cookie(SESSION_COOKIE, signing_key.issue("adm-hx", "ward_admin", new_ward, 600))
    page = page_of(client.get(page_url))
    assert "Phường Hòa Xuân" in page.text and "Bật nhận trực tuyến" in page.text
    assert "Chỉ nộp tại Bộ phận một cửa" in page.text   # level 2: no switch
    forged = client.post(f"{page_url}/thu-tuc/HT-XNHN", data={"csrf_token": "khac", "online": "1"})
    assert forged.status_code == 400
    assert offered(client, new_ward)["HT-XNHN"]["online"] is False

    csrf = client.get_cookie(CSRF_COOKIE).value
    on = client.post(f"{page_url}/thu-tuc/HT-XNHN", data={"csrf_token": csrf, "online": "1", "since": "05/03/2026"})
    assert on.status_code == 303 and on.headers["Location"] == f"{page_url}?da_luu=HT-XNHN"
    page = page_of(client.get(on.headers["Location"]))
    assert "nhận hồ sơ trực tuyến từ ngày 05/03/2026" in page.text and "Tắt nhận trực tuyến" in page.text
    assert offered(client, new_ward)["HT-XNHN"]["online_since"] == "2026-03-05"
    citizen = token("citizen", None, subject="cit-lan")
    assert submit_to(client, citizen, new_ward, forms).status_code == 201

    wrong = client.post(f"{page_url}/thu-tuc/HT-XNHN", data={"csrf_token": csrf, "online": "1", "since": "31/02/2026"})
    assert wrong.status_code == 422 and "Ngày bắt đầu nhận trực tuyến" in page_of(wrong).text
    assert offered(client, new_ward)["HT-XNHN"]["online_since"] == "2026-03-05"   # unchanged
    off = client.post(f"{page_url}/thu-tuc/HT-XNHN", data={"csrf_token": csrf, "online": "0"})
    assert off.status_code == 303
    assert offered(client, new_ward)["HT-XNHN"]["online"] is False


# ---------------------------------------------------------------- the portal, per ward
def test_the_portal_says_what_the_citizens_ward_takes_online(client, new_ward, signing_key, token):
    client.set_cookie(SESSION_COOKIE, signing_key.issue("cit-lan", "citizen", new_ward, 600, phone_last4="3456"))
    catalog = client.get("/dossier/portal").get_data(as_text=True)
    assert "Phường Hòa Xuân đang nhận hồ sơ trực tuyến 0 thủ tục" in catalog
    assert f'data-ward-counter="{new_ward}"' in catalog
    assert put(client, new_ward, "HT-XNHN", token("admin"), online=True, since="2026-03-02").status_code == 200
    catalog = client.get("/dossier/portal").get_data(as_text=True)
    assert "Phường Hòa Xuân đang nhận hồ sơ trực tuyến 1 thủ tục" in catalog
    assert "Phường Hòa Xuân nhận hồ sơ trực tuyến từ ngày 02/03/2026" in catalog
    anyone = client.get(f"/dossier/portal?phuong={WARD}").get_data(as_text=True)
    assert f'data-ward-online="{WARD}"' in anyone


# ---------------------------------------------------------------- the real worker on the real broker
def _publish(settings, db, source, *events):
    commit(db, lambda session: None, list(events))
    relay = Relay(db, settings, source)
    try:
        relay.publish_pending()
    finally:
        relay.close()


def test_the_worker_records_ward_opened_once_sessions_revoked_and_answers_for_sms(broker_settings, service_db):
    bootstrap.prepare(broker_settings)
    db, identity_db = service_db("dossier"), service_db("identity")
    proc = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "dossier"],
                            env=settings_env(broker_settings))
    try:
        wait_for(lambda: _answers(broker_settings), timeout=60, message="the dossier worker to answer RPC")
        opened = new_event("WardOpened", NEW_WARD, OPENED)
        revoked = new_event("SessionsRevoked", NEW_WARD, {"account_id": "off-gone", "ward_id": NEW_WARD,
                                                         "revoked_before": "2026-12-01T08:00:00Z",
                                                         "reason": "officer_deactivated"})
        _publish(broker_settings, identity_db, "identity", opened, revoked)
        wait_for(lambda: db[store.WARDS].find_one({"_id": NEW_WARD}), timeout=30, message="the ward recorded")
        wait_for(lambda: db[REVOKED].find_one({"_id": "off-gone"}), timeout=30, message="the revocation kept")
        identity_db["outbox"].update_many({}, {"$set": {"status": "pending"}})   # delivered again
        _publish(broker_settings, identity_db, "identity")
        wait_for(lambda: identity_db["outbox"].count_documents({"status": "pending"}) == 0, timeout=10)
        assert db[store.WARDS].count_documents({"_id": NEW_WARD}) == 1
        assert db["processed_events"].count_documents({"type": "WardOpened"}) == 1
        assert rpc.call(broker_settings, "dossier", "for_sms", "no-such-dossier", "e", timeout=10) is None
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _answers(settings) -> bool:
    try:
        return rpc.call(settings, "dossier", "for_sms", "probe", "probe", timeout=5) is None
    except rpc.RpcUnavailable:
        return False
