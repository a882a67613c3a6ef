"""identity's citizen pages (/identity/register, /login, /password, /logout) through Flask's
test client against the SecantusDB server: each form goes through the JSON API's rules
(the account, its event in the outbox, the audit, the login limits and lockout), shows
its errors beside the fields in Vietnamese, keeps what was typed but never a password,
and refuses a post without the CSRF token."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from motcua_common import demo
from motcua_common.outbox import OUTBOX
from motcua_testing.pagecheck import page_of
from motcua_common.web_session import CSRF_COOKIE, SESSION_COOKIE
from motcua_identity import bootstrap
from motcua_identity.api import LOGINS_PER_USERNAME, create_app
from motcua_common.audit import settle as chain_audit

WARD = "dn-hai-chau"
NATIONAL_ID = "048090001234"
PASSWORD = "hoa-sen-2026"


@pytest.fixture
def sent():
    return []


@pytest.fixture
def app(settings, sent):
    bootstrap.prepare(settings, demo=True)
    return create_app(settings, send_reply=lambda *args: sent.append(args))


@pytest.fixture
def client(app, sent):
    client = app.test_client()
    client.sent = sent
    return client


def form_token(client, path: str) -> str:
    """Open the form like a browser: the token in the form equals the cookie it gets."""
    page = page_of(client.get(path))
    token = page.inputs["csrf_token"]["value"]
    assert client.get_cookie(CSRF_COOKIE).value == token
    return token


def registration(**overrides) -> dict:
    form = {"national_id": "048 090 001 234", "full_name": "Nguyễn Văn An", "date_of_birth": "01/05/1990",
            "phone": "0905 123 456", "ward_id": WARD, "password": PASSWORD, "password_repeat": PASSWORD}
    form.update(overrides)
    return form


def register(client, **overrides):
    token = form_token(client, "/identity/register")
    return client.post("/identity/register", data=dict(registration(**overrides), csrf_token=token))


def type_the_code(client, page):
    """The registration's next step: the code texted to the phone, typed on the page it shows."""
    code = [v["code"] for _to, template, v, _w, _k in client.sent if template == "phone_code"][-1]
    token = form_token(client, "/identity/register")
    return client.post("/identity/register/verify", data={"citizen_id": page.inputs["citizen_id"]["value"],
                                                          "code": code, "csrf_token": token})


def register_and_verify(client, **overrides):
    registered = register(client, **overrides)
    assert registered.status_code == 201
    verified = type_the_code(client, page_of(registered))
    assert verified.status_code == 200
    return verified


def sign_in(client, username, password, next_path="/dossier/portal"):
    token = form_token(client, f"/identity/login?next={next_path}")
    return client.post(f"/identity/login?next={next_path}",
                       data={"username": username, "password": password, "csrf_token": token})


def session_of(app, client):
    """The Principal of the browser's session cookie, verified as every service verifies it."""
    return app.extensions["motcua"].verifier.verify(client.get_cookie(SESSION_COOKIE).value)


# ---------------------------------------------------------------- registration
def test_the_registration_form_offers_every_ward_and_is_a_safe_page(client):
    response = client.get("/identity/register")
    assert response.status_code == 200
    page = page_of(response)
    assert set(demo.ward_ids()) <= set(page.options["ward_id"])
    assert {"national_id", "full_name", "date_of_birth", "phone", "password", "password_repeat"} <= set(page.inputs)
    assert "script-src 'self' 'nonce-" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "/identity/static/identity.css" in response.get_data(as_text=True)
    style = client.get("/identity/static/identity.css")
    assert style.status_code == 200 and "no-store" not in style.headers.get("Cache-Control", "")


def test_registering_on_the_web_takes_the_api_path(client, service_db):
    response = register(client)
    assert response.status_code == 201
    page = page_of(response)
    # The account is made; the page asks for the code texted to the phone before it is usable.
    assert "Xác nhận số điện thoại" in page.text and "mã xác nhận 6 chữ số" in page.text
    assert client.post("/identity/api/v1/sessions", json={"username": NATIONAL_ID, "password": PASSWORD}
                       ).get_json()["code"] == "phone_not_verified"
    token = form_token(client, "/identity/register")
    wrong = client.post("/identity/register/verify", data={"citizen_id": page.inputs["citizen_id"]["value"],
                                                           "code": "000000" if client.sent[-1][2]["code"] != "000000"
                                                           else "111111", "csrf_token": token})
    assert wrong.status_code == 422 and "còn 4 lần thử" in page_of(wrong).errors["code"]
    page = page_of(type_the_code(client, page))
    assert "Đã xác nhận số điện thoại" in page.text
    assert "/identity/login?next=/dossier/portal" in page.links
    db = service_db("identity")
    citizen = db.citizens.find_one({"national_id": NATIONAL_ID})
    # The same record the API writes: normalised phone, ISO date from dd/mm/yyyy, argon2id, channel web.
    assert citizen["phone"] == "+84905123456" and citizen["date_of_birth"] == "1990-05-01"
    assert citizen["password_hash"].startswith("$argon2id$") and citizen["channel"] == "web"
    events = [o["envelope"] for o in db[OUTBOX].find({"routing_key": {"$ne": "WardOpened"}})]
    assert [(e["type"], e["payload"]["channel"]) for e in events] == [("CitizenRegistered", "web")]
    chain_audit(db)
    assert db.audit_log.count_documents({"action": "register", "subject_id": citizen["_id"], "outcome": "ok"}) == 1
    # The account signs in through the JSON API too.
    assert client.post("/identity/api/v1/sessions", json={"username": NATIONAL_ID, "password": PASSWORD}).status_code == 200


def test_the_date_input_form_is_accepted_too(client, service_db):
    assert register(client, date_of_birth="1990-05-01").status_code == 201
    assert service_db("identity").citizens.find_one()["date_of_birth"] == "1990-05-01"


def test_each_error_is_shown_beside_its_field_and_the_typed_values_stay(client, service_db):
    response = register(client, national_id="12345", full_name="", date_of_birth="31/02/1990", phone="12345",
                        ward_id="", password="123", password_repeat="123")
    assert response.status_code == 422
    page = page_of(response)
    assert set(page.errors) == {"national_id", "full_name", "date_of_birth", "phone", "ward_id", "password"}
    assert "12 chữ số" in page.errors["national_id"]
    assert "ngày/tháng/năm" in page.errors["date_of_birth"]
    assert "Xin chọn phường" in page.errors["ward_id"]
    assert "8 ký tự" in page.errors["password"]
    # Only the Vietnamese half of the API's "Vietnamese / English" messages.
    assert not any(" / " in message or "must" in message for message in page.errors.values())
    assert page.inputs["national_id"]["value"] == "12345" and page.inputs["phone"]["value"] == "12345"
    assert page.inputs["date_of_birth"]["value"] == "31/02/1990"
    assert "value" not in page.inputs["password"] and "value" not in page.inputs["password_repeat"]
    assert page.inputs["national_id"].get("aria-invalid") == "true"
    assert service_db("identity").citizens.count_documents({}) == 0


def test_a_cccd_that_does_not_match_the_year_of_birth_is_refused(client):
    page = page_of(register(client, date_of_birth="01/05/1991"))
    assert "năm sinh" in page.errors["national_id"]


def test_passwords_that_differ_create_nothing(client, service_db):
    response = register(client, password_repeat="hoa-sen-2027")
    assert response.status_code == 422
    page = page_of(response)
    assert set(page.errors) == {"password_repeat"} and page.selected["ward_id"] == WARD
    assert service_db("identity").citizens.count_documents({}) == 0
    assert service_db("identity")[OUTBOX].count_documents({"routing_key": {"$ne": "WardOpened"}}) == 0
    # The other fields are still checked, so the citizen fixes everything in one go.
    both = page_of(register(client, password_repeat="hoa-sen-2027", phone="0905"))
    assert set(both.errors) == {"password_repeat", "phone"}
    assert service_db("identity").citizens.count_documents({}) == 0


def test_a_second_account_for_the_same_cccd_reveals_nothing_of_the_first(client, service_db):
    assert register(client).status_code == 201
    again = register(client, full_name="Trần Thị Bình", phone="0912 345 678", ward_id="hn-ba-dinh")
    assert again.status_code == 409
    page = page_of(again)
    assert "đã có tài khoản" in page.errors["national_id"]
    body = again.get_data(as_text=True)
    assert "Nguyễn Văn An" not in body and "0905 123 456" not in body and "905123456" not in body
    assert service_db("identity").citizens.count_documents({}) == 1


def test_a_form_post_without_the_csrf_token_is_refused(client, service_db):
    form_token(client, "/identity/register")  # the browser has a cookie, the post lacks the token
    for path, data in (("/identity/register", registration()),
                       ("/identity/login", {"username": NATIONAL_ID, "password": PASSWORD}),
                       ("/identity/password", {}), ("/identity/logout", {})):
        response = client.post(path, data=dict(data, csrf_token="forged"))
        assert response.status_code == 400, path
        assert "Phiên làm việc đã hết hạn, vui lòng tải lại trang" in page_of(response).text
    assert service_db("identity").citizens.count_documents({}) == 0


# ---------------------------------------------------------------- sign in and out
def test_signing_in_sets_the_session_cookie_and_goes_to_next(app, client):
    register_and_verify(client)
    response = sign_in(client, NATIONAL_ID, PASSWORD, next_path="/dossier/portal/dossiers")
    assert response.status_code == 303 and response.headers["Location"] == "/dossier/portal/dossiers"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    principal = session_of(app, client)
    assert principal.role == "citizen" and principal.must_change_password is False
    # Never to another site.
    for elsewhere in ("//evil.example/x", "https://evil.example/"):
        assert sign_in(client, NATIONAL_ID, PASSWORD, next_path=elsewhere).headers["Location"] == "/dossier/portal"


def test_an_officer_signs_in_with_a_username(app, client):
    response = sign_in(client, "canbo.haichau", demo.DEMO_STAFF_PASSWORD)
    assert response.status_code == 303
    assert session_of(app, client).role == "officer"


def test_wrong_passwords_then_the_lockout_with_its_end_in_vietnamese(client, service_db):
    register_and_verify(client)
    empty = sign_in(client, "", "")
    assert empty.status_code == 422 and set(page_of(empty).errors) == {"username", "password"}
    wrong = sign_in(client, NATIONAL_ID, "wrong-password")
    assert wrong.status_code == 401
    page = page_of(wrong)
    assert "không đúng" in page.text and page.inputs["username"]["value"] == NATIONAL_ID
    assert "value" not in page.inputs["password"]
    for _ in range(3):
        sign_in(client, NATIONAL_ID, "wrong-password")
    locked = sign_in(client, NATIONAL_ID, "wrong-password")
    assert locked.status_code == 423 and int(locked.headers["Retry-After"]) > 0
    assert re.search(r"bị khóa đến \d{2}:\d{2} ngày \d{2}/\d{2}/\d{4}", page_of(locked).text)
    # Locked means locked, from the page as from the API.
    assert sign_in(client, NATIONAL_ID, PASSWORD).status_code == 423
    assert client.get_cookie(SESSION_COOKIE) is None
    chain_audit(service_db("identity"))
    assert service_db("identity").audit_log.count_documents({"action": "login", "outcome": "locked"}) == 1


def test_too_many_attempts_get_a_429_page(settings, sent):
    # A clock standing still: the limits count per minute, and a slow run crossing a minute
    # would start a new count half-way (seen once on a loaded machine).
    from datetime import datetime, timezone

    from motcua_common.clock import FixedClock

    bootstrap.prepare(settings, demo=True)
    client = create_app(settings, send_reply=lambda *args: sent.append(args),
                        clock=FixedClock(datetime(2026, 12, 7, 2, 0, 30, tzinfo=timezone.utc))).test_client()
    # An unknown username is answered as a known one: 401, then locked from this address.
    answers = [sign_in(client, "nobody.here", "wrong-password").status_code for _ in range(LOGINS_PER_USERNAME)]
    assert answers == [401] * 4 + [423] * (LOGINS_PER_USERNAME - 4)
    refused = sign_in(client, "nobody.here", "wrong-password")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "quá nhiều lần" in page_of(refused).text


def test_signing_out_clears_the_session(client):
    register_and_verify(client)
    sign_in(client, NATIONAL_ID, PASSWORD)
    assert client.get_cookie(SESSION_COOKIE) is not None
    token = form_token(client, "/identity/login")
    response = client.post("/identity/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/identity/login"
    assert client.get_cookie(SESSION_COOKIE) is None


# ---------------------------------------------------------------- a temporary password
def test_a_temporary_password_must_be_changed_before_going_on(app, client, sent, service_db):
    officer = client.post("/identity/api/v1/sessions", json={"username": "canbo.haichau", "password": demo.DEMO_STAFF_PASSWORD})
    body = {"national_id": NATIONAL_ID, "full_name": "Nguyễn Văn An", "date_of_birth": "1990-05-01",
            "phone": "0905 123 456", "ward_id": WARD}
    created = client.post("/identity/api/v1/citizens", json=body,
                          headers={"Authorization": f"Bearer {officer.get_json()['access_token']}"})
    assert created.status_code == 201
    temporary = sent[-1][2]["password"]

    assert client.get("/identity/password").headers["Location"].startswith("/identity/login?next=")
    response = sign_in(client, NATIONAL_ID, temporary, next_path="/dossier/portal/submit")
    location = response.headers["Location"]
    assert response.status_code == 303 and urlsplit(location).path == "/identity/password"
    assert parse_qs(urlsplit(location).query)["next"] == ["/dossier/portal/submit"]
    assert session_of(app, client).must_change_password is True

    token = page_of(client.get(location)).inputs["csrf_token"]["value"]

    def change(current, new, repeat):
        return client.post(location, data={"current_password": current, "new_password": new,
                                           "new_password_repeat": repeat, "csrf_token": token})

    differ = change(temporary, "lua-moi-2026", "lua-moi-2027")
    assert differ.status_code == 422 and set(page_of(differ).errors) == {"new_password_repeat"}
    wrong = change("not-the-one", "lua-moi-2026", "lua-moi-2026")
    assert wrong.status_code == 401 and set(page_of(wrong).errors) == {"current_password"}
    weak = change(temporary, "12345678", "12345678")
    assert weak.status_code == 422 and "dễ đoán" in page_of(weak).errors["new_password"]
    done = change(temporary, "lua-moi-2026", "lua-moi-2026")
    assert done.status_code == 303 and done.headers["Location"] == "/dossier/portal/submit"
    # A fresh session without the "must change" mark, the event, and the new password works.
    assert session_of(app, client).must_change_password is False
    assert [o["envelope"]["type"] for o in service_db("identity")[OUTBOX].find()][-1] == "PasswordChanged"
    assert client.post("/identity/api/v1/sessions", json={"username": NATIONAL_ID, "password": "lua-moi-2026"}).status_code == 200
