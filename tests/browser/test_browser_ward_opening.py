"""Opening a real ward, in a real browser, through the pages only (issue 17).

`motcua up` WITHOUT --demo (no demo wards, no demo staff; kiosks must be paired) and with
MOTCUA_ADMIN_PASSWORD: the platform admin signs in, finds Phường Sông Công (official code
05518) in Thái Nguyên (province 19) by typing "song cong" without accents, opens it and
creates its ward admin, an officer and a leader; the ward admin signs in, sets up two queue
services, two counters and "always open", and makes a kiosk pairing link; a kiosk-sized
browser opens the link and takes ticket A001; the officer signs in at counter quay-1 and
calls it. The mistakes people make on the way are shown too: a name that is no unit, a
ward opened twice (two admins, or a stale page), a ward admin at another ward's page.

The tests run in order and share one platform; each step is photographed
(ward-open-NN-….png, in the session's tmp folder and /tmp/motcua-screenshots/). The admin
pages are driven with JavaScript OFF (they must work without it) at an office PC's
1366×768; the kiosk is the 1080×1920 portrait touch screen. HTTP calls only read state."""
from __future__ import annotations

import os
import re
import uuid

import pytest
import requests
from playwright.sync_api import expect

from motcua_platform.embedded import free_port
from motcua_testing.fixtures import RunningPlatform, create_vhost, delete_vhost, wait_for

pytestmark = pytest.mark.browser

ADMIN_PASSWORD = "quan-tri-2026"
PROVINCE = "19"              # Tỉnh Thái Nguyên
OFFICIAL_CODE = "05518"      # Phường Sông Công
WARD = "phuong-song-cong"    # the id of its codename
OTHER_CODE, OTHER_WARD = "05860", "phuong-pho-yen"
PC = {"width": 1366, "height": 768}
KIOSK = {"width": 1080, "height": 1920}
STAFF = {
    "ward_admin": ("truongbp.songcong", "Nguyễn Thị Hoa", "ward_admin", "", "Songcong-truongbp-26"),
    "officer": ("canbo.lan", "Trần Văn Lân", "officer", "quay-1", "Songcong-canbo-2026"),
    "leader": ("lanhdao.songcong", "Lê Minh Đức", "leader", "", "Songcong-lanhdao-26"),
}


@pytest.fixture(scope="module")
def real_platform(tmp_path_factory):
    """`motcua up` as a ward would run it: no --demo, the platform admin's password set."""
    vhost = f"motcua-browser-real-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost)
    data_dir = tmp_path_factory.mktemp("motcua-browser-real")
    env = dict(os.environ, AMQP_URL=amqp_url, MOTCUA_DATA_DIR=str(data_dir), MOTCUA_RELAY_POLL_SECONDS="0.1",
               MOTCUA_ADMIN_PASSWORD=ADMIN_PASSWORD)
    for name in ("MONGO_URL", "SMS_GATEWAY_URL", "MOTCUA_DEMO"):
        env.pop(name, None)
    running = RunningPlatform(env, data_dir / "platform.log", args=(), port=free_port())
    try:
        ready = running.start()
    except RuntimeError as exc:
        delete_vhost(vhost)
        pytest.fail(str(exc))
    yield ready
    running.stop()
    delete_vhost(vhost)


@pytest.fixture(scope="module")
def pages(chromium):
    """The browsers of the people in this story, kept across the module's ordered tests."""
    contexts, made = [], {}

    def get(who: str, viewport: dict = PC, javascript: bool = False):
        if who not in made:
            context = chromium.new_context(viewport=viewport, locale="vi-VN", java_script_enabled=javascript)
            contexts.append(context)
            made[who] = context.new_page()
        return made[who]

    yield get
    for context in contexts:
        context.close()


def fits_the_screen(page):
    """Nothing cut off sideways: the page is no wider than the window."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def sign_in(page, base, next_path, username, password):
    page.goto(f"{base}/identity/login?next={next_path}")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Đăng nhập").click()


def sign_out(page):
    page.get_by_role("button", name="Đăng xuất").first.click()
    expect(page).to_have_url(re.compile(r"/identity/login"))


def field_error(page, name):
    return page.locator(f"[data-error-for={name}]")


# ---------------------------------------------------------------- 1. the platform admin
def test_the_admin_opens_song_cong_found_without_accents(real_platform, pages, shots):
    page = pages("admin")
    page.goto(f"{real_platform}/identity/admin/wards")
    expect(page).to_have_url(re.compile(r"/identity/login\?next="))
    expect(page.locator("label[for=f-username]")).to_have_text("Tên đăng nhập")   # staff, not a CCCD
    expect(page.locator("h1")).to_have_text("Đăng nhập cán bộ")
    expect(page.get_by_role("link", name="Đăng ký")).to_have_count(0)            # no citizen sign-up here
    shots(page, "ward-open-01-admin-sign-in")
    page.fill("#f-username", "admin")
    page.fill("#f-password", ADMIN_PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(re.compile(r"/identity/admin/wards$"))
    expect(page.locator("[data-open-wards] tbody")).to_contain_text("Chưa có phường nào")

    # A name that is no unit of the province.
    page.select_option("#f-province_code", PROVINCE)
    page.fill("#f-q", "song cog xyz")
    page.get_by_role("button", name="Tìm").click()
    expect(page.locator("[data-empty]")).to_contain_text("Không tìm thấy xã, phường nào có tên “song cog xyz” "
                                                         "ở Tỉnh Thái Nguyên")
    fits_the_screen(page)
    shots(page, "ward-open-02-admin-search-not-found")

    page.fill("#f-q", "song cong")
    page.get_by_role("button", name="Tìm").click()
    row = page.locator("tr", has=page.locator(f"#u-{OFFICIAL_CODE}"))
    expect(row).to_contain_text("Phường Sông Công")
    expect(row).to_contain_text("Chưa mở")
    fits_the_screen(page)
    shots(page, "ward-open-03-admin-province-search")

    # A second tab on the same search, left open: it will try to open the ward again.
    stale = page.context.new_page()
    stale.goto(page.url)
    stale.check(f"#u-{OFFICIAL_CODE}")

    page.check(f"#u-{OFFICIAL_CODE}")
    page.get_by_role("button", name="Mở các đơn vị đã chọn").click()
    expect(page.locator(f"[data-outcome=opened]")).to_contain_text(WARD)
    expect(page.locator("[data-open-wards]")).to_contain_text("Phường Sông Công")
    fits_the_screen(page)
    shots(page, "ward-open-04-admin-opened")

    stale.get_by_role("button", name="Mở các đơn vị đã chọn").click()
    expect(stale.locator("[data-outcome=exists]")).to_contain_text("đã mở từ trước (phuong-song-cong), không mở lại")
    expect(stale.locator("[data-outcomes]")).to_contain_text("Đã mở 0 đơn vị")
    shots(stale, "ward-open-05-admin-opened-twice")
    stale.close()

    wards = requests.get(f"{real_platform}/identity/api/v1/wards", timeout=30).json()
    opened = [w for w in (wards.get("items", wards) if isinstance(wards, dict) else wards) if w["ward_id"] == WARD]
    assert len(opened) == 1 and opened[0]["official_code"] == OFFICIAL_CODE
    # The queue learns of the new ward from identity's WardOpened event, a moment later.
    wait_for(lambda: requests.get(f"{real_platform}/queue/api/v1/wards/{WARD}/counters",
                                  timeout=30).status_code == 200, message="the queue to know Sông Công")


def test_the_admin_creates_the_ward_admin_an_officer_and_a_leader(real_platform, pages, shots):
    page = pages("admin")
    page.goto(f"{real_platform}/identity/admin/wards")
    page.locator("[data-open-wards] tr", has_text="Phường Sông Công").get_by_role("link", name="Cán bộ").click()
    expect(page).to_have_url(re.compile(rf"/identity/admin/wards/{WARD}$"))
    expect(page.locator("h1")).to_have_text("Phường Sông Công")
    shots(page, "ward-open-06-admin-ward-officers-empty")

    # A too-short password is refused beside its field; what was typed stays.
    username, full_name, role, counter_id, _ = STAFF["ward_admin"]
    page.fill("#f-username", username)
    page.fill("#f-full_name", full_name)
    page.select_option("#f-role", role)
    page.fill("#f-password", "ngan")
    page.get_by_role("button", name="Tạo tài khoản").click()
    expect(field_error(page, "password")).to_contain_text("ít nhất")
    expect(page.locator("#f-username")).to_have_value(username)
    fits_the_screen(page)
    shots(page, "ward-open-07-admin-officer-refused")

    for username, full_name, role, counter_id, password in STAFF.values():
        page.fill("#f-username", username)
        page.fill("#f-full_name", full_name)
        page.select_option("#f-role", role)
        page.fill("#f-counter_id", counter_id)
        page.fill("#f-password", password)
        page.get_by_role("button", name="Tạo tài khoản").click()
        expect(page.locator("[data-done]")).to_have_text("Đã tạo tài khoản cán bộ.")
        expect(page.locator(f"[data-officer='{username}']")).to_contain_text(full_name)
    expect(page.locator("[data-staff] tbody tr")).to_have_count(3)
    fits_the_screen(page)
    shots(page, "ward-open-08-admin-three-officers")
    sign_out(page)


# ---------------------------------------------------------------- 2. the ward admin
def test_the_ward_admin_sets_up_services_counters_and_hours(real_platform, pages, shots):
    page = pages("ward_admin")
    username, _, _, _, password = STAFF["ward_admin"]
    page.goto(f"{real_platform}/queue/admin/{WARD}")
    expect(page).to_have_url(re.compile(r"/identity/login\?next="))
    expect(page.locator("label[for=f-username]")).to_have_text("Tên đăng nhập")   # the queue's page is staff's too
    shots(page, "ward-open-09-ward-admin-sign-in")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(re.compile(rf"/queue/admin/{WARD}$"))
    expect(page.locator("h1")).to_contain_text("Quản trị xếp hàng")
    # A new ward's hours, written the 24-hour way whatever the PC's locale.
    expect(page.locator("input[name=mon_2_closes]")).to_have_value("17:00")
    fits_the_screen(page)
    shots(page, "ward-open-10-queue-admin-empty")

    services = page.locator("[data-new-service]")
    for code, name in (("A", "Hộ tịch – Chứng thực"), ("B", "Đất đai – Xây dựng")):
        services = page.locator("[data-new-service]")
        services.locator("input[name=code]").fill(code)
        services.locator("input[name=name]").fill(name)
        services.locator("input[name=prefix]").fill(code)
        services.get_by_role("button", name="Thêm dịch vụ").click()
        expect(page.locator("[data-saved]")).to_have_text("Đã lưu dịch vụ.")
    shots(page, "ward-open-11-queue-admin-services")

    # A counter that serves nothing is refused beside its service ticks, in view, with what was typed kept.
    counter = page.locator("[data-new-counter]")
    counter.locator("input[name=counter_id]").fill("quay-1")
    counter.locator("input[name=name]").fill("Quầy 1")
    counter.get_by_role("button", name="Thêm quầy").click()
    refused = page.locator("[data-new-counter] .field-error")
    expect(refused).to_have_text("Hãy chọn ít nhất một dịch vụ.")
    expect(refused).to_be_in_viewport()
    expect(page.locator("[data-new-counter] input[name=counter_id]")).to_have_value("quay-1")
    shots(page, "ward-open-12-queue-admin-counter-refused")

    for counter_id, name, codes in (("quay-1", "Quầy 1", ("A", "B")), ("quay-2", "Quầy 2", ("B",))):
        counter = page.locator("[data-new-counter]")
        counter.locator("input[name=counter_id]").fill(counter_id)
        counter.locator("input[name=name]").fill(name)
        for code in codes:
            counter.locator(f"input[name=service_codes][value={code}]").check()
        counter.get_by_role("button", name="Thêm quầy").click()
        expect(page.locator("[data-saved]")).to_have_text("Đã lưu quầy.")
    shots(page, "ward-open-13-queue-admin-counters")

    # A new ward opens Mon–Fri 07:30–11:30 and 13:30–17:00 (Asia/Ho_Chi_Minh); CI runs at
    # night, so the ward admin switches "always open" on through the page — that is what
    # the switch is for (a 24/7 pilot).
    page.locator("[data-hours-form] input[name=always_open]").check()
    page.get_by_role("button", name="Lưu giờ làm việc").click()
    expect(page.locator("[data-saved]")).to_have_text("Đã lưu giờ làm việc.")
    expect(page.locator(".admin-nav-status")).to_contain_text("Đang mở cửa")
    expect(page.locator("[data-always-open]")).to_be_in_viewport()
    fits_the_screen(page)
    shots(page, "ward-open-14-queue-admin-always-open")

    listed = requests.get(f"{real_platform}/queue/api/v1/wards/{WARD}/counters", timeout=30).json()
    listed = listed.get("items", listed) if isinstance(listed, dict) else listed
    assert {c["counter_id"]: sorted(c["service_codes"]) for c in listed} == {"quay-1": ["A", "B"], "quay-2": ["B"]}


def test_the_kiosk_is_paired_and_issues_A001(real_platform, pages, shots):
    kiosk = pages("kiosk", KIOSK, javascript=True)
    kiosk.goto(f"{real_platform}/queue/kiosk/{WARD}")
    expect(kiosk.locator("h1")).to_have_text("Máy lấy số chưa được ghép nối")
    expect(kiosk.locator("[data-service-code]")).to_have_count(0)
    shots(kiosk, "ward-open-15-kiosk-unpaired")

    page = pages("ward_admin")
    page.goto(f"{real_platform}/queue/admin/{WARD}#kiosks")
    page.get_by_role("button", name="Tạo liên kết ghép nối máy mới").click()
    # The answer opens at the kiosks' section: the one-time link is on the screen, not below it.
    expect(page.locator("[data-pairing-link]")).to_be_in_viewport()
    link = page.locator("[data-pairing-link] code").inner_text().strip()
    assert f"/queue/kiosk/{WARD}/pair/" in link
    shots(page, "ward-open-16-queue-admin-pairing-link")

    kiosk.goto(link)
    expect(kiosk).to_have_url(re.compile(rf"/queue/kiosk/{WARD}\?paired=1$"))
    expect(kiosk.locator("[data-service-code]")).to_have_count(2)
    shots(kiosk, "ward-open-17-kiosk-paired")
    kiosk.locator("[data-service-code=A]").click()
    expect(kiosk.locator("[data-ticket-number]")).to_have_text("A001")
    shots(kiosk, "ward-open-18-kiosk-ticket-A001")

    page.goto(f"{real_platform}/queue/admin/{WARD}")
    expect(page.locator("#kiosks")).to_contain_text("Đang dùng")
    shots(page, "ward-open-19-queue-admin-paired-kiosk")


def test_the_officer_calls_A001_at_quay_1(real_platform, pages, shots):
    username, _, _, _, password = STAFF["officer"]
    page = pages("officer", PC, javascript=True)
    page.goto(f"{real_platform}/queue/counter/{WARD}/quay-1")
    expect(page.locator("[data-login]")).to_be_visible()
    shots(page, "ward-open-20-counter-sign-in")
    page.locator("[data-login-form] input[name=username]").fill(username)
    page.locator("[data-login-form] input[name=password]").fill(password)
    page.locator("[data-login-form]").get_by_role("button", name="Đăng nhập").click()
    expect(page.locator("[data-console]")).to_be_visible()
    expect(page.locator("[data-officer]")).to_have_text(username)
    page.get_by_role("button", name="Gọi số tiếp theo").click()
    expect(page.locator("[data-current-number]")).to_have_text("A001")
    expect(page.get_by_role("button", name="Hoàn thành")).to_be_enabled()
    fits_the_screen(page)
    shots(page, "ward-open-21-counter-calling-A001")

    board = requests.get(f"{real_platform}/queue/api/v1/wards/{WARD}/board", timeout=30).json()
    assert "A001" in str(board)


# ---------------------------------------------------------------- 3. the wrong ward
def test_a_ward_admin_at_another_wards_page_gets_a_clear_403(real_platform, pages, shots):
    admin = pages("admin")
    sign_in(admin, real_platform, "/identity/admin/wards", "admin", ADMIN_PASSWORD)
    admin.select_option("#f-province_code", PROVINCE)
    admin.fill("#f-q", "pho yen")
    admin.get_by_role("button", name="Tìm").click()
    admin.check(f"#u-{OTHER_CODE}")
    admin.get_by_role("button", name="Mở các đơn vị đã chọn").click()
    expect(admin.locator("[data-outcome=opened]")).to_contain_text(OTHER_WARD)
    # The queue learns of a new ward from identity's WardOpened event, a moment later.
    wait_for(lambda: requests.get(f"{real_platform}/queue/api/v1/wards/{OTHER_WARD}/counters",
                                  timeout=30).status_code == 200, message="the queue to know Phổ Yên")

    page = pages("ward_admin")
    response = page.goto(f"{real_platform}/queue/admin/{OTHER_WARD}")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Không có quyền truy cập")
    expect(page.locator("body")).to_contain_text("Phường Phổ Yên")
    expect(page.locator("[data-own-page]")).to_have_attribute("href", f"/queue/admin/{WARD}")
    fits_the_screen(page)
    shots(page, "ward-open-22-queue-admin-other-ward-403")

    response = page.goto(f"{real_platform}/identity/admin/wards/{OTHER_WARD}")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Không có quyền truy cập")
    shots(page, "ward-open-23-identity-admin-other-ward-403")
