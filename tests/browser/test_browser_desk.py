"""The officer's desk in a real browser (issue 18), against `motcua up --demo`.

At a 1366×768 counter PC the officer of Phường Sông Công signs in, files a dossier at the
counter for a citizen with no account and no phone (a counter record: name, date of birth),
prints the receipt (A4 and A5, its QR code the portal's lookup of the receipt code),
receives it, asks for a missing paper (the note is required: first without one), receives
it again when the paper is brought, and starts processing; the ward's leader, in another
browser, approves it from «Chờ phê duyệt»; the result's verification address (the one
printed under the QR code of the signed PDF) opens the public page saying it is valid; the
officer returns the result, recording who collected it, and the work list no longer shows
it open. No SMS reaches the gateway for that dossier: the citizen has no phone.

A shorter second run does the same for a citizen WITH an account and a phone: the
supplement request's SMS carries the officer's note, and the result-ready SMS arrives.

Through the pages only; HTTP calls only read state for the assertions. Every step is
photographed (desk-NN-….png, in the session's tmp folder and /tmp/motcua-screenshots/)."""
from __future__ import annotations

import re
import time

import pytest
import requests
from playwright.sync_api import expect

from motcua_testing.fixtures import wait_for
from motcua_testing.phones import verify_phone

pytestmark = pytest.mark.browser

WARD = "tn-song-cong"
PASSWORD = "MotCua-demo-2026"
PC = {"width": 1366, "height": 768}
DESK = f"/dossier/desk/{WARD}"
PROCEDURE = "HT-KH"  # Đăng ký kết hôn: level 3, no fee
NO_PHONE = {"national_id": "019095007788", "full_name": "Hoàng Văn Tư", "date_of_birth": "12/03/1995"}
WITH_PHONE = {"national_id": "019192006655", "full_name": "Lý Thị Ngân", "phone": "0987654321",
              "password": "ly-thi-ngan-1992"}
PAPERS = ("Tờ khai đăng ký kết hôn (theo mẫu)", "Giấy tờ tùy thân của hai bên (xuất trình)")
MISSING = "Giấy xác nhận tình trạng hôn nhân (khi đăng ký ở nơi không thường trú)"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
NOTE = "Thiếu Giấy xác nhận tình trạng hôn nhân của bên nữ; mang bản chính đến Bộ phận một cửa"
COLLECTOR = "Nguyễn Thị Mai"
seen: dict[str, str] = {}  # the no-phone dossier's receipt code, checked again by the second run


def sign_in(page, platform: str, username: str) -> None:
    """Identity's sign-in page, back to the desk (next=)."""
    page.goto(f"{platform}/identity/login?next={DESK}")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(f"{platform}{DESK}")


def fits(page) -> None:
    """Nothing wider than the counter PC's screen (no sideways scrolling, nothing cut off)."""
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide on a {widths[1]} px screen"


def focused(page) -> str:
    return page.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.name)")


def api_dossier(platform: str, headers: dict, dossier_id: str) -> dict:
    answer = requests.get(f"{platform}/dossier/api/v1/dossiers/{dossier_id}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def texts_about(gateway, receipt_code: str) -> list[dict]:
    return [m["body"] for m in gateway.messages if receipt_code in m["body"].get("text", "")]


def action_form(page, action: str):
    return page.locator(f"form[data-action={action}]")


def take_action(page, action: str, note: str | None = None) -> None:
    form = action_form(page, action)
    if note is not None:
        form.locator("textarea").fill(note)
    form.get_by_role("button").click()
    expect(page).to_have_url(re.compile(rf"da_lam={action}$"))


def file_at_counter(page, platform: str, shots, national_id: str, procedure: str, *, record: dict | None,
                    shot_prefix: str | None) -> str:
    """The intake page as an officer drives it: the CCCD typed into the box that has the
    focus, the procedure chosen, the citizen's name typed where the focus lands, the form
    and the papers."""
    # (The bar's access keys, Alt+N and Alt+D, are the browser's own: synthetic key presses do not reach them.)
    page.get_by_role("navigation", name="Các mục").get_by_role("link", name=re.compile("Tiếp nhận hồ sơ")).click()
    expect(page).to_have_url(f"{platform}{DESK}/tiep-nhan")
    assert focused(page) == "national_id"
    page.keyboard.type(national_id)
    page.locator("#procedure_code").select_option(procedure)
    page.get_by_role("button", name="Tìm công dân, mở tờ khai").click()
    expect(page.locator("[data-form]")).to_be_visible()
    if record is not None:
        expect(page.locator("[data-no-account]")).to_contain_text("chưa có tài khoản")
        assert focused(page) == "record.full_name"
        page.keyboard.type(record["full_name"])
    else:
        expect(page.locator("[data-account]")).to_contain_text("đã có tài khoản")
    for paper in PAPERS:
        page.locator("[data-papers]").get_by_label(paper).check()
    page.locator("[name='form.ho_ten_chong']").fill("Hoàng Văn Tư")
    page.locator("[name='form.ngay_sinh_chong']").fill("12/03/1995")
    page.locator("[name='form.ho_ten_vo']").fill("Lý Thị Ngân")
    page.locator("[name='form.ngay_sinh_vo']").fill("20/10/1992")
    fits(page)
    if shot_prefix:
        shots(page, f"{shot_prefix}-intake-form")
    if record is not None:
        # The date of birth forgotten: the error beside its box, what was typed kept.
        page.get_by_role("button", name="Tiếp nhận và in giấy hẹn").click()
        expect(page.locator("[data-error-for='record.date_of_birth']")).to_contain_text("Nhập ngày sinh")
        expect(page.locator("#record\\.date_of_birth")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#record\\.full_name")).to_have_value(record["full_name"])
        expect(page.locator("[name='form.ho_ten_vo']")).to_have_value("Lý Thị Ngân")
        for paper in PAPERS:
            expect(page.locator("[data-papers]").get_by_label(paper)).to_be_checked()
        fits(page)
        if shot_prefix:
            shots(page, f"{shot_prefix}-intake-error")
        page.locator("[data-form-message] a[href='#record.date_of_birth']").click()
        assert focused(page) == "record.date_of_birth"
        page.keyboard.type(record["date_of_birth"])
    page.get_by_role("button", name="Tiếp nhận và in giấy hẹn").click()
    expect(page.locator("[data-filed]")).to_contain_text("Đã tiếp nhận hồ sơ")
    return page.url.split("/ho-so/")[1].split("?")[0]


def test_a_citizen_with_no_account_and_no_phone_from_the_counter_to_the_result(
        platform, open_page, shots, sms_gateway, officer_headers):
    officer = open_page(PC)
    sign_in(officer, platform, "canbo.songcong")
    expect(officer.locator("[data-tab=ca-phuong]")).to_have_attribute("aria-current", "page")
    assert focused(officer) == "q"  # the search box, ready for a receipt code
    fits(officer)
    shots(officer, "desk-01-work-list")

    # ------------------------------------------------------------ intake at the counter
    dossier_id = file_at_counter(officer, platform, shots, NO_PHONE["national_id"], PROCEDURE, record=NO_PHONE,
                                 shot_prefix="desk-02")
    code = api_dossier(platform, officer_headers, dossier_id)["receipt_code"]
    assert re.fullmatch(r"TNSC-\d{6}-[2-9A-Z]{5}", code), code
    seen["no_phone"] = code
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "submitted")
    expect(officer.locator("[data-citizen-name]")).to_contain_text(NO_PHONE["full_name"])
    expect(officer.locator("[data-citizen-name]")).to_contain_text("không có điện thoại")
    expect(officer.locator("[data-no-sms]")).to_contain_text("không nhận SMS")
    expect(officer.locator("[data-citizen-name]")).to_contain_text("…7788")
    fits(officer)
    shots(officer, "desk-04-filed")

    # ------------------------------------------------------------ the receipt, A4 and A5
    officer.locator("[data-filed]").get_by_role("link", name=re.compile(r"In giấy tiếp nhận \(A4\)")).click()
    expect(officer.locator("[data-receipt]")).to_be_visible()
    expect(officer.locator("[data-code]")).to_have_text(code)
    expect(officer.locator("[data-citizen]")).to_have_text(NO_PHONE["full_name"])
    expect(officer.locator("[data-procedure]")).to_contain_text("Đăng ký kết hôn")
    expect(officer.locator("[data-papers] li")).to_have_text(list(PAPERS))
    lookup = officer.locator("[data-lookup]").inner_text().strip()
    assert lookup == f"{platform}/dossier/portal/tra-cuu?ma={code}"
    assert officer.locator("[data-qr]").get_attribute("src").startswith("data:image/svg+xml;base64,")
    fits(officer)
    shots(officer, "desk-05-receipt-a4")
    officer.get_by_role("link", name="A5", exact=True).click()
    expect(officer.locator("body")).to_have_class(re.compile("kho-a5"))
    expect(officer.locator("[data-code]")).to_have_text(code)
    fits(officer)
    shots(officer, "desk-06-receipt-a5")
    # What printing gives: the tools gone, the receipt on the page.
    officer.emulate_media(media="print")
    expect(officer.locator(".receipt-tools")).to_be_hidden()
    shots(officer, "desk-07-receipt-a5-print")
    officer.emulate_media(media="screen")

    # The QR code's address: the portal's lookup with the receipt code filled in.
    citizen = open_page({"width": 390, "height": 844}, javascript=False)
    citizen.goto(lookup)
    expect(citizen.locator("#receipt_code")).to_have_value(code)
    shots(citizen, "desk-08-receipt-qr-lookup-phone")

    # ------------------------------------------------------------ receive, a paper missing, received again
    officer.get_by_role("link", name="← Về hồ sơ").click()
    take_action(officer, "receive")
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "received")
    assert api_dossier(platform, officer_headers, dossier_id)["status"] == "received"
    fits(officer)
    shots(officer, "desk-09-received")

    asking = action_form(officer, "request_supplement")
    expect(asking.locator("label")).to_contain_text("công dân không nhận SMS: báo trực tiếp")
    asking.get_by_role("button", name="Yêu cầu bổ sung").click()  # no note: the browser keeps the form
    assert asking.locator("textarea").evaluate("t => t.validity.valueMissing")
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "received")
    asking.locator("textarea").fill("   ")  # only spaces: the page says what is missing, beside the box
    asking.get_by_role("button", name="Yêu cầu bổ sung").click()
    error = officer.locator("[data-error-for='request_supplement.note']")
    expect(error).to_contain_text("Nhập nội dung")
    expect(action_form(officer, "request_supplement").locator("textarea")).to_have_attribute("aria-invalid", "true")
    assert focused(officer) == "request_supplement.note"  # the officer types the note straight away
    expect(officer.locator("[data-form-message]")).to_contain_text("Chưa thực hiện được")
    fits(officer)
    shots(officer, "desk-10-supplement-note-required")
    take_action(officer, "request_supplement", NOTE)
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "supplement_requested")
    expect(officer.locator("[data-timeline]")).to_contain_text(NOTE)
    assert api_dossier(platform, officer_headers, dossier_id)["status"] == "supplement_requested"
    fits(officer)
    shots(officer, "desk-11-supplement-requested")

    officer.goto(f"{platform}{DESK}?tab=cho-bo-sung")
    expect(officer.locator(f"tr[data-receipt='{code}']")).to_be_visible()
    shots(officer, "desk-12-list-awaiting-supplement")
    officer.locator(f"tr[data-receipt='{code}'] a.code").click()
    # The citizen brings the paper: its scan attached, named, then the dossier received again.
    officer.locator("#attach\\.document").select_option(MISSING)
    officer.locator("#attach\\.file").set_input_files(files=[{"name": "xac-nhan-hon-nhan.png", "mimeType": "image/png",
                                                              "buffer": PNG}])
    officer.get_by_role("button", name="Đính kèm").click()
    expect(officer.locator("[data-attachments]")).to_contain_text("xac-nhan-hon-nhan.png")
    expect(officer.locator("[data-papers] li", has_text=MISSING).locator("[data-scanned]")).to_be_visible()
    take_action(officer, "receive", "Công dân đã mang Giấy xác nhận tình trạng hôn nhân")
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "received")
    history = [h["status"] for h in api_dossier(platform, officer_headers, dossier_id)["history"]]
    assert history == ["submitted", "received", "supplement_requested", "received"], history
    take_action(officer, "start_processing")
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "processing")
    expect(officer.locator("[data-awaiting-leader]")).to_be_visible()
    expect(action_form(officer, "approve")).to_have_count(0)  # the leader's, not the officer's
    fits(officer)
    shots(officer, "desk-13-processing")

    # ------------------------------------------------------------ the leader approves
    leader = open_page(PC)
    sign_in(leader, platform, "lanhdao.songcong")
    leader.locator("[data-tab=cho-duyet]").click()
    expect(leader.locator("[data-tab=cho-duyet]")).to_have_attribute("aria-current", "page")
    row = leader.locator(f"tr[data-receipt='{code}']")
    expect(row).to_contain_text(NO_PHONE["full_name"])
    fits(leader)
    shots(leader, "desk-14-leader-awaiting-approval")
    row.locator("a.code").click()
    expect(action_form(leader, "approve")).to_be_visible()
    # The leader's step first, not under «Từ chối».
    assert leader.locator("form[data-action]").first.get_attribute("data-action") == "approve"
    fits(leader)
    shots(leader, "desk-15-leader-dossier")
    take_action(leader, "approve", "Đồng ý")
    expect(leader.locator("[data-status]")).to_have_attribute("data-status", "result_ready")
    shots(leader, "desk-16-leader-approved")

    # ------------------------------------------------------------ the result, checked by its address
    officer.reload()
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "result_ready")
    with officer.expect_download() as download:
        officer.locator("[data-result-link]").click()
    pdf = open(download.value.path(), "rb").read()
    assert pdf.startswith(b"%PDF-")
    verify_link = officer.locator("[data-verify-link]")
    expect(verify_link).to_have_text("Kiểm tra kết quả")
    address = verify_link.get_attribute("href")
    assert re.fullmatch(rf"{re.escape(platform)}/dossier/verify/[A-Za-z0-9_-]{{32}}", address), address
    assert address.encode() in pdf  # the address printed (and linked) under the QR code of the signed PDF
    fits(officer)
    shots(officer, "desk-17-result-ready")
    verify_link.click()
    expect(officer).to_have_url(address)
    expect(officer.locator("body")).to_contain_text("hợp lệ")
    expect(officer.locator("body")).to_contain_text(code)
    assert NO_PHONE["full_name"] not in officer.locator("body").inner_text()  # no personal data
    fits(officer)
    shots(officer, "desk-18-verify-page")
    answer = requests.get(address, params={"format": "json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    checked = answer.json()
    assert checked["valid"] is True and checked["receipt_code"] == code and checked["ward_id"] == WARD
    assert checked["procedure_code"] == PROCEDURE
    officer.go_back()

    # ------------------------------------------------------------ returning the result
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "result_ready")
    giving = action_form(officer, "return")
    expect(giving.locator("#return\\.collected_by")).to_have_value(NO_PHONE["full_name"])
    expect(giving.locator("#return\\.collected_at")).to_have_value(re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$"))
    giving.locator("#return\\.collected_by").fill(COLLECTOR)  # his sister collects it
    shots(officer, "desk-19-return-form")
    take_action(officer, "return", "Nhận thay, có giấy ủy quyền")
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "returned")
    expect(officer.locator("[data-collected]")).to_contain_text(COLLECTOR)
    returned = api_dossier(platform, officer_headers, dossier_id)
    assert returned["status"] == "returned"
    fits(officer)
    shots(officer, "desk-20-returned")

    officer.get_by_role("navigation", name="Các mục").get_by_role("link", name=re.compile("Danh sách hồ sơ")).click()
    expect(officer).to_have_url(f"{platform}{DESK}")
    expect(officer.locator(f"tr[data-receipt='{code}']")).to_have_count(0)
    officer.locator("#q").fill(code)
    officer.locator("#q").press("Enter")
    found = officer.locator(f"[data-search-results] tr[data-receipt='{code}']")
    expect(found).to_contain_text("Đã trả kết quả")
    fits(officer)
    shots(officer, "desk-21-list-after-return")

    # ------------------------------------------------------------ no SMS for a citizen with no phone
    time.sleep(3)  # the events of the last steps reach notify well within this
    assert texts_about(sms_gateway, code) == []


def test_a_citizen_with_an_account_and_a_phone_is_texted_the_note_and_the_result(
        platform, open_page, shots, sms_gateway, officer_headers, leader_headers):
    phone = "+84" + WITH_PHONE["phone"][1:]
    registered = requests.post(f"{platform}/identity/api/v1/citizens", timeout=30, json={
        "national_id": WITH_PHONE["national_id"], "full_name": WITH_PHONE["full_name"], "date_of_birth": "1992-10-20",
        "phone": WITH_PHONE["phone"], "ward_id": WARD, "password": WITH_PHONE["password"]})
    assert registered.status_code == 201, registered.text
    verify_phone(platform, sms_gateway, registered, phone)

    officer = open_page(PC)
    sign_in(officer, platform, "canbo.songcong")
    dossier_id = file_at_counter(officer, platform, shots, WITH_PHONE["national_id"], PROCEDURE, record=None,
                                 shot_prefix="desk-30")
    code = api_dossier(platform, officer_headers, dossier_id)["receipt_code"]
    expect(officer.locator("[data-citizen-name]")).to_contain_text(WITH_PHONE["full_name"])
    expect(officer.locator("[data-no-sms]")).to_have_count(0)
    shots(officer, "desk-31-filed-account")

    def texted(part: str) -> list[str]:
        return [m["text"] for m in texts_about(sms_gateway, code) if m["to"] == phone and part in m["text"]]

    take_action(officer, "receive")
    expect(action_form(officer, "request_supplement").locator("label")).to_contain_text("gửi cho công dân qua SMS")
    take_action(officer, "request_supplement", NOTE)
    supplement = wait_for(lambda: texted("cần bổ sung") or texted("can bo sung"), timeout=60,
                          message="the supplement request's SMS")
    assert any(NOTE in t or "Thieu Giay xac nhan tinh trang hon nhan" in t for t in supplement), supplement
    shots(officer, "desk-32-supplement-requested-account")
    take_action(officer, "receive", "Đã bổ sung")
    take_action(officer, "start_processing")
    approved = requests.post(f"{platform}/dossier/api/v1/dossiers/{dossier_id}/actions", headers=leader_headers,
                             json={"action": "approve"}, timeout=30)
    assert approved.status_code == 200, approved.text
    wait_for(lambda: texted("đã có kết quả") or texted("da co ket qua"), timeout=60, message="the result-ready SMS")
    officer.reload()
    expect(officer.locator("[data-status]")).to_have_attribute("data-status", "result_ready")
    shots(officer, "desk-33-result-ready-account")
    # Nothing was ever texted about the first run's dossier, the citizen with no phone.
    if "no_phone" in seen:
        assert texts_about(sms_gateway, seen["no_phone"]) == []

