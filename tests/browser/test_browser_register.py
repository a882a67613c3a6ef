"""A citizen makes an e-citizen account on the web and signs in, in a real browser against
`motcua up --demo`: on a phone with JavaScript turned off (plain form posts and redirects
must be enough) and on a desktop; wrong input is shown beside its field in Vietnamese and
what was typed stays; the session cookie takes the citizen to the portal; the password
page and sign-out work. Every step is photographed for a person to look at."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from motcua_testing.phones import code_texted_to

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
WARD = "tn-song-cong"
SESSION_COOKIE = "motcua_session"


def field_error(page, name):
    return page.locator(f"[data-error-for={name}]")


def session_cookie(page):
    return [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]


def fill_registration(page, national_id, full_name, date_of_birth, phone, password, repeat):
    page.fill("#f-national_id", national_id)
    page.fill("#f-full_name", full_name)
    page.fill("#f-date_of_birth", date_of_birth)
    page.fill("#f-phone", phone)
    page.select_option("#f-ward_id", WARD)
    page.fill("#f-password", password)
    page.fill("#f-password_repeat", repeat)


def prove_the_phone(page, sms_gateway, phone: str, shots, name: str) -> None:
    """The page asks for the code texted to the phone, as the citizen would type it."""
    expect(page.locator("[data-verify-phone]")).to_be_visible()
    shots(page, name)
    page.fill("#f-code", "000000" if code_texted_to(sms_gateway, phone) != "000000" else "111111")
    page.click("[data-verify-phone] form:first-of-type button[type=submit]")
    expect(page.locator("[data-error-for=code]")).to_be_visible()  # a wrong code is said beside the field
    page.fill("#f-code", code_texted_to(sms_gateway, phone))
    page.click("[data-verify-phone] form:first-of-type button[type=submit]")


def test_registering_and_signing_in_on_a_phone_without_javascript(platform, open_page, shots, sms_gateway):
    page = open_page(PHONE, javascript=False)
    page.goto(f"{platform}/identity/register")
    expect(page.locator("h1")).to_have_text("Đăng ký tài khoản công dân")
    shots(page, "identity-register-phone-nojs")

    # A wrong date, a landline and two different passwords: each message beside its field.
    fill_registration(page, "019 185 004 321", "Lê Thị Hoa", "31/02/1985", "0208 3856 123", "song-cong-85", "song-cong-58")
    page.click("main button[type=submit]")
    expect(field_error(page, "date_of_birth")).to_contain_text("ngày/tháng/năm")
    expect(field_error(page, "phone")).to_contain_text("Số điện thoại")
    expect(field_error(page, "password_repeat")).to_contain_text("chưa giống nhau")
    expect(page.locator("#f-full_name")).to_have_value("Lê Thị Hoa")
    expect(page.locator("#f-ward_id")).to_have_value(WARD)
    expect(page.locator("#f-password")).to_have_value("")
    shots(page, "identity-register-errors-phone-nojs")

    fill_registration(page, "019 185 004 321", "Lê Thị Hoa", "12/08/1985", "0912 345 678", "song-cong-85", "song-cong-85")
    page.click("main button[type=submit]")
    prove_the_phone(page, sms_gateway, "+84912345678", shots, "identity-verify-phone-nojs")
    expect(page.locator("[data-username]")).to_have_text("019185004321")
    shots(page, "identity-registered-phone-nojs")

    page.click("a.big-button")  # the success page's button (the header has a link too)
    expect(page).to_have_url(re.compile(r"/identity/login\?next=/dossier/portal$"))
    shots(page, "identity-login-phone-nojs")
    page.fill("#f-username", "019185004321")
    page.fill("#f-password", "song-cong-85")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/dossier/portal"))
    assert urlsplit(page.url).path == "/dossier/portal"
    [cookie] = session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # The account is real: the JSON API signs it in too.
    answer = requests.post(f"{platform}/identity/api/v1/sessions", timeout=30,
                           json={"username": "019185004321", "password": "song-cong-85"})
    assert answer.status_code == 200 and answer.json()["ward_id"] == WARD


def test_signing_in_changing_the_password_and_out_on_a_desktop(platform, open_page, shots, sms_gateway):
    page = open_page(DESKTOP)
    page.goto(f"{platform}/identity/register")
    fill_registration(page, "001090007788", "Trần Văn Nam", "1990-03-15", "0987 654 321", "ha-noi-1990", "ha-noi-1990")
    shots(page, "identity-register-desktop")
    page.click("main button[type=submit]")
    prove_the_phone(page, sms_gateway, "+84987654321", shots, "identity-verify-phone-desktop")
    expect(page.locator("[data-username]")).to_have_text("001090007788")

    page.goto(f"{platform}/identity/login?next=/identity/password?next=/identity/register")
    page.fill("#f-username", "001090007788")
    page.fill("#f-password", "not-my-password")
    page.click("main button[type=submit]")
    expect(page.locator("[data-notice]")).to_contain_text("không đúng")
    expect(page.locator("#f-username")).to_have_value("001090007788")
    shots(page, "identity-login-wrong-desktop")

    page.fill("#f-password", "ha-noi-1990")
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/identity/password\?next=/identity/register$"))
    page.fill("#f-current_password", "ha-noi-1990")
    page.fill("#f-new_password", "ha-noi-2026")
    page.fill("#f-new_password_repeat", "ha-noi-2026")
    shots(page, "identity-password-desktop")
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/identity/register$"))
    assert session_cookie(page)

    page.click("text=Đăng xuất")
    expect(page).to_have_url(re.compile(r"/identity/login$"))
    assert session_cookie(page) == []
    shots(page, "identity-login-desktop")
    answer = requests.post(f"{platform}/identity/api/v1/sessions", timeout=30,
                           json={"username": "001090007788", "password": "ha-noi-2026"})
    assert answer.status_code == 200
