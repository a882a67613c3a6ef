"""The citizen portal (/dossier/portal) in a real browser against `motcua up --demo`: on a
phone with JavaScript off, a citizen finds a procedure, signs in on identity's page, gets the
form's errors beside the fields, submits, pays the level-4 fee at the (local) provider,
attaches a scan, finds the dossier in «Hồ sơ của tôi» and signs out; on a desktop, the officer's
approval shows up as a signed PDF to download, and the public lookup answers by receipt
code. Every page photographed, and checked not to scroll sideways."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from motcua_testing.phones import verify_phone

pytestmark = pytest.mark.browser
WARD = "tn-song-cong"  # the demo officer canbo.songcong works here
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
NATIONAL_ID, PASSWORD, PHONE_NUMBER = "019190004321", "song-cong-1990", "0912345678"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"


@pytest.fixture(scope="module")
def citizen_token(platform, sms_gateway):
    """A citizen of the ward, registered (the phone proven) and signed in through identity's API."""
    registered = requests.post(f"{platform}/identity/api/v1/citizens", timeout=30, json={
        "national_id": NATIONAL_ID, "full_name": "Đỗ Thị Hạnh", "date_of_birth": "1990-05-04",
        "phone": PHONE_NUMBER, "ward_id": WARD, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    verify_phone(platform, sms_gateway, registered, "+84" + PHONE_NUMBER[1:])
    session = requests.post(f"{platform}/identity/api/v1/sessions", timeout=30,
                            json={"username": NATIONAL_ID, "password": PASSWORD})
    assert session.status_code == 200, session.text
    return session.json()["access_token"]


def sign_in(page, platform, token):
    """The session cookie /identity/login sets (HttpOnly, SameSite=Lax, path /)."""
    page.context.add_cookies([{"name": "motcua_session", "value": token, "url": platform,
                               "httpOnly": True, "sameSite": "Lax"}])


def fits_the_screen(page) -> None:
    """Nothing wider than the viewport (no sideways scrolling, nothing cut off), and every
    value beside its label has room for words, not a column of single letters."""
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide on a {widths[1]} px screen"
    narrowest = page.evaluate(
        "Math.min(...Array.from(document.querySelectorAll('.facts dd'), d => d.getBoundingClientRect().width))")
    assert narrowest >= 150, f"a value is squeezed into {narrowest:.0f} px"


def test_on_a_phone_without_javascript_a_citizen_submits_pays_and_attaches(platform, open_page, shots,
                                                                            citizen_token):
    page = open_page(PHONE, javascript=False)
    page.goto(f"{platform}/dossier/portal")
    expect(page.locator("[data-procedure]").first).to_be_visible()
    expect(page.locator("main").get_by_role("link", name="Đăng ký tài khoản")).to_have_attribute(
        "href", "/identity/register")
    fits_the_screen(page)
    shots(page, "portal-catalog-phone-nojs")

    page.locator("#q").fill("xac nhan tinh trang hon nhan")
    page.get_by_role("button", name="Tìm thủ tục").click()
    expect(page.locator("[data-procedure]")).to_have_count(1)
    page.locator("[data-procedure=HT-XNHN] h3 a").click()
    expect(page.locator("[data-sign-in] a").first).to_have_attribute(
        "href", "/identity/login?next=/dossier/portal/thu-tuc/HT-XNHN")

    # Identity's sign-in page, and back to the procedure (next=).
    page.get_by_role("link", name="Đăng nhập để nộp hồ sơ").click()
    page.locator("input[name=username]").fill(NATIONAL_ID)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(f"{platform}/dossier/portal/thu-tuc/HT-XNHN")
    expect(page.locator("#ward_id")).to_have_value(WARD)  # the citizen's own ward
    page.locator("[name='form.ho_ten']").fill("Đỗ Thị Hạnh")
    page.get_by_role("button", name="Nộp hồ sơ").click()
    expect(page.locator("[data-form-message]")).to_contain_text("Tờ khai chưa đúng")
    expect(page.locator("[data-error-for='form.ngay_sinh']")).to_contain_text("Vui lòng nhập «Ngày sinh»")
    expect(page.locator("[name='form.ho_ten']")).to_have_value("Đỗ Thị Hạnh")  # what was typed is kept
    fits_the_screen(page)
    shots(page, "portal-form-errors-phone-nojs")

    page.locator("[name='form.ngay_sinh']").fill("04/05/1990")  # typed as people write dates
    page.locator("[name='form.tinh_trang_hon_nhan']").select_option("Chưa kết hôn")
    page.locator("[name='form.muc_dich_su_dung']").fill("Đăng ký kết hôn")
    page.get_by_role("button", name="Nộp hồ sơ").click()
    expect(page.locator("[data-submitted]")).to_contain_text("Đã nộp hồ sơ")
    receipt = page.locator("[data-receipt-code]").inner_text()
    assert re.fullmatch(r"TNSC-\d{6}-[2-9A-Z]{5}", receipt)
    expect(page.locator("[data-status]")).to_contain_text("Đã nộp, chờ tiếp nhận")
    fits_the_screen(page)
    shots(page, "portal-dossier-phone-nojs")
    dossier_url = page.url.split("?")[0]

    page.get_by_role("button", name="Nộp lệ phí trực tuyến").click()
    expect(page).to_have_url(re.compile(r"/dossier/pay/local/"))
    page.get_by_role("button", name=re.compile("^Thanh toán")).click()
    expect(page.locator(".done")).to_contain_text("Đã thanh toán")
    page.get_by_role("link", name="Về trang hồ sơ").click()
    expect(page).to_have_url(dossier_url)
    expect(page.locator("main")).to_contain_text("Đã nộp phí")

    page.locator("#document").select_option(index=1)
    page.locator("#file").set_input_files(files=[{"name": "giay-to.png", "mimeType": "image/png", "buffer": PNG}])
    page.get_by_role("button", name="Đính kèm tệp").click()
    expect(page.locator("[data-attachments]")).to_contain_text("giay-to.png")

    page.get_by_role("navigation", name="Các mục").get_by_role("link", name="Hồ sơ của tôi").click()
    expect(page.locator(".dossier-row").first).to_contain_text(receipt)
    fits_the_screen(page)
    shots(page, "portal-my-dossiers-phone-nojs")

    page.get_by_role("button", name="Đăng xuất").click()
    assert "motcua_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{platform}/dossier/portal/ho-so")
    expect(page).to_have_url(re.compile(r"/identity/login\?next=/dossier/portal/ho-so$"))


def test_on_a_desktop_the_signed_result_and_the_public_lookup(platform, open_page, shots, citizen_token,
                                                            officer_headers, leader_headers):
    citizen = {"Authorization": f"Bearer {citizen_token}"}
    submitted = requests.post(f"{platform}/dossier/api/v1/dossiers", headers=citizen, timeout=30, json={
        "procedure_code": "HT-KS", "ward_id": WARD, "form": {
            "ho_ten": "Đỗ Minh An", "ngay_sinh": "2026-01-05", "gioi_tinh": "Nam", "noi_sinh": "Bệnh viện A Thái Nguyên",
            "ho_ten_me": "Đỗ Thị Hạnh", "quan_he_nguoi_di_dang_ky": "Mẹ"}})
    assert submitted.status_code == 201, submitted.text
    dossier = submitted.json()
    for action in ("receive", "start_processing", "approve"):
        done = requests.post(f"{platform}/dossier/api/v1/dossiers/{dossier['dossier_id']}/actions", timeout=30,
                             headers=leader_headers if action == "approve" else officer_headers, json={"action": action})
        assert done.status_code == 200, done.text

    page = open_page(DESKTOP)
    page.goto(f"{platform}/dossier/portal")
    fits_the_screen(page)
    shots(page, "portal-catalog-desktop")
    sign_in(page, platform, citizen_token)
    page.goto(f"{platform}/dossier/portal/ho-so/{dossier['dossier_id']}")
    expect(page.locator("[data-status]")).to_contain_text("Đã có kết quả")
    fits_the_screen(page)
    shots(page, "portal-dossier-result-desktop")
    with page.expect_download() as download:
        page.locator("[data-result-link]").click()
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    page.goto(f"{platform}/dossier/portal/tra-cuu")
    page.locator("#receipt_code").fill(dossier["receipt_code"].lower())
    page.locator("#phone_last4").fill(PHONE_NUMBER[-4:])
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.locator("[data-lookup-result]")).to_contain_text("Đã có kết quả")
    shots(page, "portal-lookup-desktop")
