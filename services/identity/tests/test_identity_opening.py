"""Opening real wards from the official list (administrative units, POST /wards by
official code, WardOpened, motcua_ward_info), managing a ward's officers (PATCH, password
reset, the ward's list, sessions ended everywhere) and correcting a citizen's ward and
phone at the counter — through the API against the SecantusDB server."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from motcua_common import demo
from motcua_common.auth import Principal
from motcua_common.outbox import OUTBOX
from motcua_identity import bootstrap, errors, units, wards
from motcua_identity.api import WardInfoCollector, create_app
from motcua_identity.deps import build_deps
from motcua_common.audit import settle as chain_audit

WARD = "dn-hai-chau"
ADMIN_PASSWORD = "admin-secret-1"


@pytest.fixture
def app(settings):
    settings = replace(settings, admin_password=ADMIN_PASSWORD, sms_inbound_token="gw", sms_registration_ward=WARD)
    bootstrap.prepare(settings, demo=True)
    sent = []
    app = create_app(settings, send_reply=lambda *args: sent.append(args), dossier_status=lambda *a: None)
    app.sent = sent
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def login(client, username, password=demo.DEMO_STAFF_PASSWORD):
    return client.post("/identity/api/v1/sessions", json={"username": username, "password": password})


def bearer(client, username, password=demo.DEMO_STAFF_PASSWORD):
    response = login(client, username, password)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def events_of(service_db, kind):
    return [o["envelope"] for o in service_db("identity")[OUTBOX].find({"routing_key": kind})]


def next_second():
    """Tokens carry whole seconds: one issued in the second of a revocation is refused too."""
    time.sleep(1.05 - (time.time() % 1))


# ---------------------------------------------------------------- the official list
def test_administrative_units_all_by_province_and_by_name_without_accents(client):
    everything = client.get("/identity/api/v1/administrative-units")
    assert everything.status_code == 200
    units_ = everything.get_json()
    assert len(units_) == 3321
    assert {u["kind"] for u in units_} == {"phường", "xã", "đặc khu"}
    assert len({u["province_code"] for u in units_}) == 34
    found = client.get("/identity/api/v1/administrative-units", query_string={"q": "song cong"}).get_json()
    assert [u["official_code"] for u in found] == ["05518"]
    assert found[0] == {"official_code": "05518", "name": "Phường Sông Công", "kind": "phường", "province_code": "19",
                        "province": "Tỉnh Thái Nguyên", "opened": "tn-song-cong"}
    hanoi = client.get("/identity/api/v1/administrative-units?province_code=01&q=Ba%20%C4%90%C3%ACnh").get_json()
    assert [(u["official_code"], u["province"]) for u in hanoi] == [("00004", "Thành phố Hà Nội")]
    thai_nguyen = client.get("/identity/api/v1/administrative-units?province_code=19").get_json()
    assert thai_nguyen and all(u["province_code"] == "19" for u in thai_nguyen)
    for junk in ("abc", "99", "1234", "1; drop"):
        refused = client.get("/identity/api/v1/administrative-units", query_string={"province_code": junk})
        assert refused.status_code == 422 and refused.get_json()["code"] == "validation_failed", junk
        assert refused.get_json()["errors"][0]["field"] == "province_code"


def test_open_a_ward_by_official_code_and_its_event(client, service_db):
    admin = bearer(client, "admin", ADMIN_PASSWORD)
    opened = client.post("/identity/api/v1/wards", json={"official_code": "05528", "target_population": 7000},
                         headers=admin)
    assert opened.status_code == 201, opened.get_json()
    ward = opened.get_json()
    unit = units.unit("05528")
    assert ward["official_code"] == "05528" and ward["name"] == unit.name and ward["province"] == "Tỉnh Thái Nguyên"
    assert ward["ward_id"] == unit.codename.replace("_", "-")
    listed = {w["ward_id"]: w for w in client.get("/identity/api/v1/wards").get_json()}
    assert listed[ward["ward_id"]]["official_code"] == "05528"
    assert listed["tn-song-cong"]["official_code"] == "05518"   # the demo ward, opened the same way
    [event] = [e for e in events_of(service_db, "WardOpened") if e["ward_id"] == ward["ward_id"]]
    assert event["source"] == "identity"
    payload = dict(event["payload"], target_population=int(event["payload"]["target_population"]))  # int64: JSON text
    assert payload == {"ward_id": ward["ward_id"], "official_code": "05528", "name": unit.name,
                       "province": "Tỉnh Thái Nguyên", "province_code": "19", "kind": unit.kind,
                       "target_population": 7000}
    # WardOpened carries the ward, never a person: no names, ids or phones of anyone.
    assert set(event["payload"]) == {"ward_id", "official_code", "name", "province", "province_code", "kind",
                                     "target_population"}

    # the same code again, by code and by id; the free-text form as before
    again = client.post("/identity/api/v1/wards", json={"official_code": "5528"}, headers=admin)
    assert again.status_code == 409 and again.get_json()["code"] == "ward_exists"
    assert again.get_json()["ward_id"] == ward["ward_id"]
    taken_id = client.post("/identity/api/v1/wards", json={"official_code": "05533", "ward_id": "tn-song-cong"},
                           headers=admin)
    assert taken_id.status_code == 409 and taken_id.get_json()["code"] == "ward_exists"
    assert service_db("identity").ward_codes.find_one({"_id": "05533"}) is None   # nothing half-written
    for body, field in [({"official_code": "99999"}, "official_code"), ({"official_code": "ABCDE"}, "official_code"),
                        ({"official_code": "123456"}, "official_code"), ({"official_code": None}, "official_code"),
                        ({"official_code": "05533", "ward_id": "Bad Id!"}, "ward_id"),
                        ({"official_code": "05533", "target_population": -3}, "target_population"),
                        ({"official_code": "05533", "name": "Tên khác"}, "name")]:
        refused = client.post("/identity/api/v1/wards", json=body, headers=admin)
        assert refused.status_code == 422 and refused.get_json()["code"] == "validation_failed", body
        assert [e["field"] for e in refused.get_json()["errors"]] == [field], body
    assert service_db("identity").wards.count_documents({"official_code": "05533"}) == 0
    free = client.post("/identity/api/v1/wards", json={"ward_id": "thu-nghiem", "name": "Phường Thử", "province": "Tỉnh X"},
                       headers=admin)
    assert free.status_code == 201 and free.get_json()["ward_id"] == "thu-nghiem"
    officer = bearer(client, "canbo.haichau")
    assert client.post("/identity/api/v1/wards", json={"official_code": "05533"}, headers=officer).status_code == 403
    assert client.post("/identity/api/v1/wards", json={"official_code": "05533"}).status_code == 401


def test_a_namesake_in_another_province_gets_its_code_appended(settings, service_db):
    bootstrap.prepare(settings, demo=True)
    deps = build_deps(settings)
    namesakes = [u for u in units.all_units() if u.codename == "xa_tan_thanh"][:2]
    first = wards.open_ward(deps, None, namesakes[0].official_code)
    second = wards.open_ward(deps, None, namesakes[1].official_code, target_population=12)
    assert first["ward_id"] == "xa-tan-thanh"
    assert second["ward_id"] == f"xa-tan-thanh-{namesakes[1].official_code}"
    with pytest.raises(errors.WardExists) as exists:
        wards.open_ward(deps, None, namesakes[0].official_code)
    assert exists.value.field == "official_code" and exists.value.ward_id == "xa-tan-thanh"
    with pytest.raises(errors.Invalid):
        wards.open_ward(deps, None, "00000")
    with pytest.raises(errors.NotAllowed):   # only the admin and the console open wards
        wards.open_ward(deps, Principal("x", "ward_admin", WARD), "05533")
    outcomes = wards.open_wards_of_province(deps, None, "19", ["05518", "5533"])
    assert [(o["official_code"], o["outcome"]) for o in outcomes] == [("05518", "exists"), ("05533", "opened")]
    with pytest.raises(errors.Invalid):
        wards.open_wards_of_province(deps, None, "19", ["00004"])   # Hà Nội's, not Thái Nguyên's


def test_opening_races_leave_one_ward_and_nothing_half_written(settings, service_db):
    from concurrent.futures import ThreadPoolExecutor

    from pymongo.errors import DuplicateKeyError

    from motcua_identity import events, store

    bootstrap.prepare(settings, demo=True)
    deps = build_deps(settings)

    def attempt(_):
        try:
            return wards.open_ward(deps, None, "05542")["ward_id"]
        except errors.WardExists as exists:
            return f"exists:{exists.ward_id}"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    opened = [a for a in answers if not a.startswith("exists:")]
    assert len(opened) == 1 and set(answers) - set(opened) <= {f"exists:{opened[0]}"}
    db = service_db("identity")
    assert db.outbox.count_documents({"routing_key": "WardOpened", "envelope.ward_id": opened[0]}) == 1
    # the id taken under the check's feet: the transaction writes neither the code nor an event
    unit = units.unit("05551")
    ward = {"ward_id": "tn-song-cong", "official_code": "05551", "name": unit.name, "province": unit.province,
            "province_code": "19", "kind": unit.kind, "target_population": 0}
    before = db.outbox.count_documents({})
    with pytest.raises(DuplicateKeyError):
        store.insert_opened_ward(db, ward, [events.ward_opened(ward)])
    assert db.ward_codes.find_one({"_id": "05551"}) is None and db.outbox.count_documents({}) == before


def test_demo_preparation_is_idempotent_and_makes_the_leaders(settings, service_db):
    bootstrap.prepare(settings, demo=True)
    bootstrap.prepare(settings, demo=True)
    db = service_db("identity")
    assert db.outbox.count_documents({"routing_key": "WardOpened"}) == len(demo.WARDS)
    for ward in demo.WARDS:
        stored = db.wards.find_one({"_id": ward["ward_id"]})
        assert stored["official_code"] == ward["official_code"]
        assert stored["target_population"] == ward["target_population"]
    leaders = {o["username"] for o in db.officers.find({"role": "leader"})}
    assert leaders >= {"lanhdao.haichau", "lanhdao.lienchieu", "lanhdao.badinh", "lanhdao.songcong"}


def test_ward_info_metric_is_cached(client, app):
    text = client.get("/identity/metrics").get_data(as_text=True)
    line = ('motcua_ward_info{name="Phường Sông Công",official_code="05518",province="Tỉnh Thái Nguyên",'
            'ward_id="tn-song-cong"} 1.0')
    assert line in text
    now = [0.0]
    deps = app.extensions["motcua"]
    collector = WardInfoCollector(deps, clock=lambda: now[0])
    assert len(collector.rows()) == len(demo.WARDS)
    wards.open_ward(deps, None, "05533")
    now[0] = 29.0
    assert len(collector.rows()) == len(demo.WARDS)        # at most one read every 30 s
    now[0] = 30.0
    assert len(collector.rows()) == len(demo.WARDS) + 1


# ---------------------------------------------------------------- officers
def test_leader_role_ward_list_and_who_may_see_it(client):
    ward_admin = bearer(client, "truongbp.haichau")
    created = client.post("/identity/api/v1/officers", headers=ward_admin, json={
        "username": "lanhdao.pho", "full_name": "Phan Văn Đức", "ward_id": WARD, "role": "leader",
        "password": "pho-chu-tich-2026", "counter_id": "quay-2"})
    assert created.status_code == 201, created.get_json()
    assert login(client, "lanhdao.pho", "pho-chu-tich-2026").get_json()["role"] == "leader"
    listed = client.get(f"/identity/api/v1/wards/{WARD}/officers", headers=ward_admin)
    assert listed.status_code == 200
    staff = {o["username"]: o for o in listed.get_json()}
    assert {"canbo.haichau", "truongbp.haichau", "lanhdao.haichau", "lanhdao.pho"} <= set(staff)
    assert staff["lanhdao.pho"]["counter_id"] == "quay-2" and staff["lanhdao.pho"]["active"] is True
    assert "password_hash" not in str(listed.get_json()) and "argon2" not in listed.get_data(as_text=True)
    other = bearer(client, "canbo.badinh")
    assert client.get(f"/identity/api/v1/wards/{WARD}/officers", headers=other).status_code == 403
    officer = bearer(client, "canbo.haichau")
    assert client.get(f"/identity/api/v1/wards/{WARD}/officers", headers=officer).status_code == 403
    admin = bearer(client, "admin", ADMIN_PASSWORD)
    assert client.get("/identity/api/v1/wards/khong-co/officers", headers=admin).status_code == 404
    # a ward admin never makes a monitor or anyone outside the ward
    for body in ({"role": "monitor"}, {"ward_id": "hn-ba-dinh"}):
        refused = client.post("/identity/api/v1/officers", headers=ward_admin, json={
            "username": "khong.duoc", "full_name": "Lê Văn Tâm", "ward_id": WARD, "role": "officer",
            "password": "quay-so-2-2026", **body})
        assert refused.status_code == 403, body


def test_deactivated_officer_cannot_sign_in_and_earlier_tokens_are_refused(client, service_db):
    officer_token = bearer(client, "canbo.haichau")
    me = client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=officer_token)
    assert me.status_code == 200   # the token works, and its (not revoked) answer is cached
    ward_admin = bearer(client, "truongbp.haichau")
    officer_id = service_db("identity").officers.find_one({"username": "canbo.haichau"})["_id"]
    patched = client.patch(f"/identity/api/v1/officers/{officer_id}", json={"active": False}, headers=ward_admin)
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["active"] is False and "password_hash" not in patched.get_json()
    # identity refuses the earlier token at once
    refused = client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=officer_token)
    assert refused.status_code == 401 and refused.get_json()["code"] == "token_revoked"
    # signing in: the answer a wrong password gets, nothing that says the account exists
    inactive = login(client, "canbo.haichau")
    unknown = login(client, "khong.ton.tai")
    assert inactive.status_code == unknown.status_code == 401
    assert inactive.get_json() == unknown.get_json()
    [event] = events_of(service_db, "SessionsRevoked")
    assert event["payload"]["account_id"] == officer_id and event["payload"]["reason"] == "officer_deactivated"
    assert event["payload"]["ward_id"] == WARD and event["payload"]["revoked_before"].endswith("Z")
    assert "canbo.haichau" not in str(event) and "Nguyễn Thị Lan" not in str(event)
    assert service_db("identity").revoked_sessions.find_one({"_id": officer_id}) is not None
    chain_audit(service_db("identity"))
    assert service_db("identity").audit_log.count_documents({"action": "update_officer", "subject_id": officer_id}) == 1
    # back at work: signs in again, and the new session is good
    next_second()
    assert client.patch(f"/identity/api/v1/officers/{officer_id}", json={"active": True},
                        headers=ward_admin).status_code == 200
    next_second()
    again = bearer(client, "canbo.haichau")
    assert client.get(f"/identity/api/v1/wards/{WARD}/coverage", headers=again).status_code == 200


def test_patch_rules(client, service_db):
    db = service_db("identity")
    ids = {o["username"]: o["_id"] for o in db.officers.find()}
    ward_admin = bearer(client, "truongbp.haichau")
    other_ward_admin_target = ids["canbo.badinh"]
    assert client.patch(f"/identity/api/v1/officers/{other_ward_admin_target}", json={"active": False},
                        headers=ward_admin).status_code == 403
    assert client.patch("/identity/api/v1/officers/khong-co", json={"active": False},
                        headers=ward_admin).get_json()["code"] == "officer_not_found"
    own = client.patch(f"/identity/api/v1/officers/{ids['truongbp.haichau']}", json={"active": False}, headers=ward_admin)
    assert own.status_code == 403
    admin_account = client.patch(f"/identity/api/v1/officers/{ids['admin']}", json={"active": False}, headers=ward_admin)
    assert admin_account.status_code == 403
    for body in ({"role": "admin"}, {"role": "monitor"}, {"active": "no"}, {"counter_id": "quầy 1"}, {"password": "x"}, {}):
        refused = client.patch(f"/identity/api/v1/officers/{ids['canbo.haichau']}", json=body, headers=ward_admin)
        assert refused.status_code == 422 and refused.get_json()["errors"], body
    moved = client.patch(f"/identity/api/v1/officers/{ids['canbo.haichau']}", json={"ward_id": "hn-ba-dinh"},
                         headers=ward_admin)
    assert moved.status_code == 403   # moving is the admin's
    renamed = client.patch(f"/identity/api/v1/officers/{ids['canbo.haichau']}",
                           json={"full_name": "Nguyễn Thị  Lan Anh", "counter_id": "quay-3"}, headers=ward_admin)
    assert renamed.status_code == 200 and renamed.get_json()["full_name"] == "Nguyễn Thị Lan Anh"
    assert events_of(service_db, "SessionsRevoked") == []   # a name or a counter ends no session
    reroled = client.patch(f"/identity/api/v1/officers/{ids['canbo.haichau']}", json={"role": "leader"},
                           headers=ward_admin)
    assert reroled.status_code == 200 and reroled.get_json()["role"] == "leader"
    admin = bearer(client, "admin", ADMIN_PASSWORD)
    moved = client.patch(f"/identity/api/v1/officers/{ids['canbo.haichau']}", json={"ward_id": "hn-ba-dinh"},
                         headers=admin)
    assert moved.status_code == 200 and moved.get_json()["ward_id"] == "hn-ba-dinh"
    assert [e["payload"]["reason"] for e in events_of(service_db, "SessionsRevoked")] == ["officer_changed"] * 2
    next_second()
    assert login(client, "canbo.haichau").get_json()["ward_id"] == "hn-ba-dinh"


def test_password_reset_shows_a_temporary_password_once(client, service_db):
    ids = {o["username"]: o["_id"] for o in service_db("identity").officers.find()}
    ward_admin = bearer(client, "truongbp.haichau")
    reset = client.post(f"/identity/api/v1/officers/{ids['canbo.haichau']}/password-reset", headers=ward_admin)
    assert reset.status_code == 200 and reset.headers["Cache-Control"] == "no-store"
    temporary = reset.get_json()["temporary_password"]
    assert reset.get_json()["must_change_password"] is True
    assert login(client, "canbo.haichau").status_code == 401          # the old password is gone
    next_second()
    session = login(client, "canbo.haichau", temporary).get_json()
    assert session["must_change_password"] is True
    stored = service_db("identity").officers.find_one({"_id": ids["canbo.haichau"]})
    assert temporary not in str(stored)
    chain_audit(service_db("identity"))
    audit = service_db("identity").audit_log.find_one({"action": "reset_officer_password"})
    assert audit["subject_id"] == ids["canbo.haichau"] and audit["actor_role"] == "ward_admin" and temporary not in str(audit)
    assert client.post(f"/identity/api/v1/officers/{ids['canbo.badinh']}/password-reset",
                       headers=ward_admin).status_code == 403
    officer = bearer(client, "canbo.lienchieu")
    assert client.post(f"/identity/api/v1/officers/{ids['canbo.haichau']}/password-reset",
                       headers=officer).status_code == 403


# ---------------------------------------------------------------- citizens in the right ward
def sms(client, text, sender="+84935111222"):
    return client.post("/identity/api/v1/sms/inbound", json={"from": sender, "text": text},
                       headers={"X-Gateway-Token": "gw"})


def test_dk_with_a_ward_code_or_name_and_the_fallback(client, app, service_db):
    db = service_db("identity")
    assert sms(client, "DK 048090001234 Nguyen Van An 01/05/1990 05518").get_json()["outcome"] == "registered"
    assert db.citizens.find_one({"national_id": "048090001234"})["ward_id"] == "tn-song-cong"
    to, template, variables, ward_id, _key = app.sent[-1]
    assert template == "temporary_password" and ward_id == "tn-song-cong" and variables["ward_name"] == "Phuong Song Cong"
    assert sms(client, "DK 048090001235 Tran Thi Binh 02/03/1990 lien chieu", sender="0905111333"
               ).get_json()["outcome"] == "registered"
    assert db.citizens.find_one({"national_id": "048090001235"})["ward_id"] == "dn-lien-chieu"
    before = len(app.sent)
    assert sms(client, "DK 048090001236 Le Van Cuong 03/04/1990 99999", sender="0905111444"
               ).get_json()["outcome"] == "registered"
    assert db.citizens.find_one({"national_id": "048090001236"})["ward_id"] == WARD   # SMS_REGISTRATION_WARD
    replies = app.sent[before:]
    assert [r[1] for r in replies] == ["temporary_password", "reply"]
    assert "Phuong Hai Chau" in replies[1][2]["text"]
    assert sms(client, "DK 048090001237 Pham Van Dung 04/05/1990", sender="0905111555").get_json()["outcome"] == "registered"
    assert db.citizens.find_one({"national_id": "048090001237"})["ward_id"] == WARD


def test_officer_corrects_a_citizens_ward_and_phone(client, app, service_db):
    db = service_db("identity")
    sms(client, "DK 048090001234 Nguyen Van An 01/05/1990")          # placed in the default ward
    citizen = db.citizens.find_one({"national_id": "048090001234"})
    password = app.sent[-1][2]["password"]
    citizen_token = bearer(client, "048090001234", password)
    assert citizen_token
    song_cong = bearer(client, "canbo.songcong")
    # by id: not theirs to see until it moves into their ward
    assert client.patch(f"/identity/api/v1/citizens/{citizen['_id']}", json={"phone": "0905000111"},
                        headers=song_cong).status_code == 404
    moved = client.put("/identity/api/v1/citizens/by-national-id", headers=song_cong,
                       json={"national_id": "048 090 001 234", "ward_id": "tn-song-cong", "phone": "0912 345 678"})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json() == {"citizen_id": citizen["_id"], "ward_id": "tn-song-cong", "phone_last4": "5678",
                                "sessions_revoked": True}
    stored = db.citizens.find_one({"_id": citizen["_id"]})
    assert stored["ward_id"] == "tn-song-cong" and stored["phone"] == "+84912345678"
    [event] = events_of(service_db, "SessionsRevoked")
    assert event["payload"]["reason"] == "contact_changed" and event["payload"]["account_id"] == citizen["_id"]
    assert "912345678" not in str(event) and "048090001234" not in str(event)
    chain_audit(db)
    audit = db.audit_log.find_one({"action": "correct_citizen"})
    assert audit["details"]["changed"] == ["phone", "ward_id"] and "912345678" not in str(audit)
    # the citizen's earlier session is over, at once
    ended = client.put("/identity/api/v1/me/password", headers=citizen_token,
                       json={"current_password": password, "new_password": "an-song-cong-90"})
    assert ended.status_code == 401 and ended.get_json()["code"] == "token_revoked"
    hai_chau = bearer(client, "canbo.haichau")
    assert client.patch(f"/identity/api/v1/citizens/{citizen['_id']}", json={"phone": "0905000111"},
                        headers=hai_chau).status_code == 404   # no longer in their ward
    assert client.patch(f"/identity/api/v1/citizens/{citizen['_id']}", json={"ward_id": "dn-hai-chau"},
                        headers=song_cong).status_code == 403  # only into one's own ward
    for body in ({"phone": "12"}, {"ward_id": "khong-co"}, {}, {"full_name": "X"}):
        refused = client.patch(f"/identity/api/v1/citizens/{citizen['_id']}", json=body, headers=song_cong)
        assert refused.status_code == 422, body
    assert client.put("/identity/api/v1/citizens/by-national-id", json={"national_id": "12", "phone": "0905000111"},
                      headers=song_cong).status_code == 422
    assert client.put("/identity/api/v1/citizens/by-national-id", json={"national_id": "048090009999", "phone": "0905000111"},
                      headers=song_cong).status_code == 404
    leader = bearer(client, "lanhdao.songcong")
    assert client.patch(f"/identity/api/v1/citizens/{citizen['_id']}", json={"phone": "0912 345 678"},
                        headers=leader).get_json()["sessions_revoked"] is False   # nothing changed, nothing ended
    citizen_self = bearer(client, "048090001234", password)
    assert client.patch(f"/identity/api/v1/citizens/{citizen['_id']}", json={"phone": "0905000111"},
                        headers=citizen_self).status_code in (403, 401)


def test_a_leaders_contacts_for_the_overdue_digest(app, client, service_db):
    """The ward's admin records how to reach its leader; notify asks for the ward's active
    leaders' contacts (the end-of-day digest of overdue dossiers)."""
    ward_admin = bearer(client, "truongbp.haichau")
    officers = service_db("identity").officers
    leader_id = officers.find_one({"username": "lanhdao.haichau"})["_id"]
    bad = client.patch(f"/identity/api/v1/officers/{leader_id}", headers=ward_admin,
                       json={"phone": "０９０５１２３４５６", "email": "not an address"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {"phone", "email"}
    done = client.patch(f"/identity/api/v1/officers/{leader_id}", headers=ward_admin,
                        json={"phone": "0905 123 456", "email": "Lanhdao.HaiChau@danang.gov.vn"})
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["phone"], done.get_json()["email"]) == ("+84905123456", "lanhdao.haichau@danang.gov.vn")
    from motcua_identity import officers as officer_cases

    deps = app.extensions["motcua"]
    assert officer_cases.ward_leaders_contacts(deps, WARD) == [
        {"officer_id": leader_id, "phone": "+84905123456", "email": "lanhdao.haichau@danang.gov.vn"}]
    assert officer_cases.ward_leaders_contacts(deps, "dn-lien-chieu") == [
        {"officer_id": officers.find_one({"username": "lanhdao.lienchieu"})["_id"]}]
    assert officer_cases.ward_leaders_contacts(deps, {"$ne": None}) == []
    client.patch(f"/identity/api/v1/officers/{leader_id}", headers=ward_admin, json={"active": False})
    assert officer_cases.ward_leaders_contacts(deps, WARD) == [], "a leader who left gets no digest"
