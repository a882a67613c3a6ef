"""The administrators' pages (/identity/admin/wards, /identity/admin/wards/<ward_id>)
through Flask's test client against the SecantusDB server: staff sign in at the citizens'
sign-in page, every form posts with its CSRF token and goes through the API's use cases
(WardOpened, SessionsRevoked, the audit), errors show beside their fields in Vietnamese,
and a user without the right gets a readable 403 page."""
from __future__ import annotations

from dataclasses import replace

import pytest

from motcua_common import demo
from motcua_common.outbox import OUTBOX
from motcua_common.web_session import CSRF_COOKIE
from motcua_identity import bootstrap
from motcua_identity.api import create_app
from motcua_testing.pagecheck import page_of

WARD = "dn-hai-chau"
ADMIN_PASSWORD = "admin-secret-1"


@pytest.fixture
def app(settings):
    settings = replace(settings, admin_password=ADMIN_PASSWORD)
    bootstrap.prepare(settings, demo=True)
    return create_app(settings, send_reply=lambda *args: None)


@pytest.fixture
def client(app):
    return app.test_client()


def form_token(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    token = page_of(response).inputs["csrf_token"]["value"]
    assert client.get_cookie(CSRF_COOKIE).value == token
    return token


def sign_in(client, username, password=demo.DEMO_STAFF_PASSWORD, next_path="/identity/admin/wards"):
    token = form_token(client, f"/identity/login?next={next_path}")
    return client.post(f"/identity/login?next={next_path}",
                       data={"username": username, "password": password, "csrf_token": token})


def test_signing_in_leads_back_and_a_non_admin_gets_a_clear_403(client):
    anonymous = client.get("/identity/admin/wards?province_code=19")
    assert anonymous.status_code == 303 and "/identity/login?next=" in anonymous.headers["Location"]
    form = page_of(client.get(anonymous.headers["Location"]))
    assert "Tên đăng nhập" in form.text   # staff sign in with a username, not a CCCD
    signed = sign_in(client, "canbo.haichau")
    assert signed.status_code == 303 and signed.headers["Location"] == "/identity/admin/wards"
    refused = client.get("/identity/admin/wards")
    assert refused.status_code == 403
    assert "không có quyền" in page_of(refused).text.lower()
    # the officer's own ward page is not theirs either (ward admins and the admin only)
    assert client.get(f"/identity/admin/wards/{WARD}").status_code == 403


@pytest.mark.parametrize("next_path", ["/queue/admin/dn-hai-chau", "/dossier/admin/dn-hai-chau"])
def test_the_other_services_admin_pages_sign_staff_in_by_username(client, next_path):
    form = page_of(client.get(f"/identity/login?next={next_path}"))
    assert "Tên đăng nhập" in form.text and "Số CCCD" not in form.text


def test_the_admin_finds_units_without_accents_and_opens_several_at_once(client, service_db):
    assert sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
    page = page_of(client.get("/identity/admin/wards"))
    assert len([v for v in page.options["province_code"] if v]) == 34
    assert "Phường Hải Châu" in page.text and "/queue/admin/dn-hai-chau" in page.links
    assert "/dossier/admin/dn-hai-chau" in page.links and "/identity/admin/wards/dn-hai-chau" in page.links
    found = page_of(client.get("/identity/admin/wards?province_code=19&q=song+cong"))
    assert found.selected["province_code"] == "19"
    assert "Phường Sông Công" in found.text and "Đã mở (tn-song-cong)" in found.text
    listed = page_of(client.get("/identity/admin/wards?province_code=19&q=phuong+ba"))
    assert "Phường Bách Quang" in listed.text and "Phường Bá Xuyên" in listed.text
    token = client.get_cookie(CSRF_COOKIE).value
    # nothing ticked: the error beside the list, nothing opened
    empty = client.post("/identity/admin/wards", data={"csrf_token": token, "province_code": "19", "q": "phuong ba"})
    assert empty.status_code == 422 and "units" in page_of(empty).errors
    opened = client.post("/identity/admin/wards", data={"csrf_token": token, "province_code": "19", "q": "phuong ba",
                                                         "units": ["05528", "05533"]})
    assert opened.status_code == 201
    result = page_of(opened)
    assert "Đã mở 2 đơn vị" in result.text and "phuong-bach-quang" in result.text
    db = service_db("identity")
    assert {w["official_code"] for w in db.wards.find({"official_code": {"$in": ["05528", "05533"]}})} == {"05528", "05533"}
    assert db[OUTBOX].count_documents({"routing_key": "WardOpened", "envelope.ward_id": "phuong-bach-quang"}) == 1
    again = client.post("/identity/admin/wards", data={"csrf_token": token, "province_code": "19", "units": ["05528"]})
    assert again.status_code == 200 and "đã mở từ trước" in page_of(again).text
    wrong = client.post("/identity/admin/wards", data={"csrf_token": token, "province_code": "01", "units": ["05528"]})
    assert wrong.status_code == 422 and "units" in page_of(wrong).errors
    junk = client.get("/identity/admin/wards?province_code=xx")
    assert junk.status_code == 422 and "province_code" in page_of(junk).errors
    # without the CSRF token nothing happens
    forged = client.post("/identity/admin/wards", data={"province_code": "19", "units": ["05542"]})
    assert forged.status_code == 400 and db.wards.find_one({"official_code": "05542"}) is None


def test_the_ward_admin_manages_the_wards_officers(client, service_db):
    path = f"/identity/admin/wards/{WARD}"
    assert sign_in(client, "truongbp.haichau", next_path=path).headers["Location"] == path
    page = page_of(client.get(path))
    assert "canbo.haichau" in page.text and "lanhdao.haichau" in page.text
    assert "target_population" not in page.inputs   # the ward admin sees the figure; the admin edits it
    token = client.get_cookie(CSRF_COOKIE).value
    # a new leader, with mistakes first
    bad = client.post(f"{path}/officers", data={"csrf_token": token, "username": "x", "full_name": "",
                                                "role": "leader", "counter_id": "", "password": "123"})
    assert bad.status_code == 422
    errors = page_of(bad).errors
    assert set(errors) == {"username", "full_name", "password"} and "8 ký tự" in errors["password"]
    assert not any(" / " in m for m in errors.values())
    assert page_of(bad).inputs["username"]["value"] == "x" and "value" not in page_of(bad).inputs["password"]
    made = client.post(f"{path}/officers", data={"csrf_token": token, "username": "lanhdao.pho", "role": "leader",
                                                 "full_name": "Phan Văn Đức", "counter_id": "quay-2",
                                                 "password": "pho-chu-tich-2026"})
    assert made.status_code == 303 and made.headers["Location"].endswith("done=officer_created")
    shown = page_of(client.get(made.headers["Location"]))
    assert "Đã tạo tài khoản cán bộ." in shown.text and "lanhdao.pho" in shown.text
    db = service_db("identity")
    officer = db.officers.find_one({"username": "canbo.haichau"})
    # re-role, then reset the password (shown once), then deactivate
    reroled = client.post(f"{path}/officers/{officer['_id']}", data={"csrf_token": token, "action": "role", "role": "leader"})
    assert reroled.status_code == 303 and db.officers.find_one({"_id": officer["_id"]})["role"] == "leader"
    reset = client.post(f"{path}/officers/{officer['_id']}/password-reset", data={"csrf_token": token})
    assert reset.status_code == 200 and reset.headers["Cache-Control"] == "no-store"
    temporary = [p for p in reset.get_data(as_text=True).split('data-temporary-password>')[1:]][0].split("<")[0]
    assert len(temporary) == 8
    assert temporary not in client.get(path).get_data(as_text=True)   # once
    off = client.post(f"{path}/officers/{officer['_id']}", data={"csrf_token": token, "action": "deactivate"})
    assert off.status_code == 303 and db.officers.find_one({"_id": officer["_id"]})["active"] is False
    assert "Đã khóa" in page_of(client.get(off.headers["Location"])).text
    assert [e["envelope"]["payload"]["reason"] for e in db[OUTBOX].find({"routing_key": "SessionsRevoked"})] == [
        "officer_changed", "officer_changed", "officer_deactivated"]
    # the deactivated officer is refused at the sign-in page like a wrong password
    other = client.application.test_client()
    refused = sign_in(other, "canbo.haichau", temporary)
    assert refused.status_code == 401
    # the ward admin cannot lock themselves out, nor touch another ward's officer
    me = db.officers.find_one({"username": "truongbp.haichau"})
    self_off = client.post(f"{path}/officers/{me['_id']}", data={"csrf_token": token, "action": "deactivate"})
    assert self_off.status_code == 403 and db.officers.find_one({"_id": me["_id"]}).get("active", True) is True
    assert "không thể tự khóa" in page_of(self_off).text
    assert client.get("/identity/admin/wards/hn-ba-dinh").status_code == 403
    far = db.officers.find_one({"username": "canbo.badinh"})
    assert client.post(f"{path}/officers/{far['_id']}", data={"csrf_token": token, "action": "deactivate"}
                       ).status_code == 403
    assert db.officers.find_one({"_id": far["_id"]}).get("active", True) is True
    assert client.post(f"{path}/population", data={"csrf_token": token, "target_population": "5"}).status_code == 403


def test_the_admin_sets_a_wards_population_and_a_ward_that_does_not_exist(client, service_db):
    sign_in(client, "admin", ADMIN_PASSWORD)
    path = f"/identity/admin/wards/{WARD}"
    page = page_of(client.get(path))
    assert page.inputs["target_population"]["value"] == "8027"
    token = client.get_cookie(CSRF_COOKIE).value
    bad = client.post(f"{path}/population", data={"csrf_token": token, "target_population": "nhiều"})
    assert bad.status_code == 422 and "số nguyên" in page_of(bad).errors["target_population"]
    saved = client.post(f"{path}/population", data={"csrf_token": token, "target_population": "9.100"})
    assert saved.status_code == 303
    assert service_db("identity").wards.find_one({"_id": WARD})["target_population"] == 9100
    assert "Đã lưu dân số mục tiêu." in page_of(client.get(saved.headers["Location"])).text
    assert client.get("/identity/admin/wards/khong-co-phuong").status_code == 404
