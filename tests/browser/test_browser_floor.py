"""The office floor in a real browser (seed 004, Sông Công): the kiosk issues a ticket
with a touch (and without JavaScript), the board shows a call without reloading, the
counter console calls and serves, the rating screen records a score; every page at the
kiosk's, the TV's and a phone's size, photographed."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from motcua_testing.fixtures import wait_for

pytestmark = pytest.mark.browser
WARD = "tn-song-cong"
API = "/queue/api/v1"
# The three screens a ward has: the kiosk (portrait), the board (a TV), a citizen's phone.
KIOSK = {"width": 1080, "height": 1920}
TV = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}


def _post(url, **kwargs):
    return requests.post(url, timeout=30, **kwargs)


def issue_ticket(platform, service_code="A", priority="normal"):
    response = _post(f"{platform}{API}/wards/{WARD}/tickets", json={"service_code": service_code, "priority": priority})
    assert response.status_code == 201, response.text
    return response.json()


def call_next(platform, officer_headers, counter_id):
    response = _post(f"{platform}{API}/wards/{WARD}/counters/{counter_id}/call-next", headers=officer_headers)
    assert response.status_code == 200, response.text
    return response.json()


def drain(platform, officer_headers, counter_id):
    """Serve whatever waits for a counter, so that a test's own ticket is the next one."""
    while True:
        response = _post(f"{platform}{API}/wards/{WARD}/counters/{counter_id}/call-next", headers=officer_headers)
        if response.status_code == 204:
            return
        _post(f"{platform}{API}/tickets/{response.json()['ticket_id']}/actions", headers=officer_headers,
              json={"action": "serve"})


def test_a_touch_on_the_kiosk_issues_a_ticket_and_shows_its_number(platform, open_page, shots):
    page = open_page(KIOSK)
    page.goto(f"{platform}/queue/kiosk/{WARD}")
    expect(page.locator("[data-service-code]")).to_have_count(6)
    shots(page, "kiosk-1080x1920")
    page.locator("[data-service-code=C]").click()
    number = page.locator("[data-ticket-number]")
    expect(number).to_have_text(re.compile(r"^C\d{3}$"))
    ticket_id = page.locator("[data-ticket-id]").get_attribute("data-ticket-id")
    shots(page, "kiosk-ticket-1080x1920")
    progress = requests.get(f"{platform}{API}/tickets/{ticket_id}", timeout=30).json()
    assert progress["number"] == number.inner_text() and progress["status"] == "waiting"
    # The slip's QR code leads a phone to the ticket's own page.
    phone = open_page(PHONE)
    phone.goto(f"{platform}/queue/ticket/{ticket_id}")
    expect(phone.locator(".slip-number")).to_have_text(progress["number"])
    expect(phone.locator(".follow-state")).to_be_visible()
    shots(phone, "ticket-follow-phone")


def test_the_kiosk_issues_without_javascript_and_takes_priority(platform, open_page, shots):
    page = open_page(PHONE, javascript=False)
    page.goto(f"{platform}/queue/kiosk/{WARD}")
    shots(page, "kiosk-phone-nojs")
    page.locator(".priority-toggle").click()
    page.locator("[data-service-code=B]").click()
    expect(page.locator("[data-ticket-number]")).to_have_text(re.compile(r"^B\d{3}$"))
    expect(page.locator(".slip-priority")).to_have_text("ƯU TIÊN")
    shots(page, "kiosk-ticket-phone-nojs")


def test_the_kiosk_looks_up_procedures_and_dossiers(platform, open_page, shots):
    page = open_page(KIOSK)
    page.goto(f"{platform}/queue/kiosk/{WARD}")
    page.get_by_role("link", name="Tra cứu thủ tục").click()
    expect(page.locator(".result-button").first).to_be_visible()
    page.locator("[data-search]").fill("khai sinh")
    expect(page.locator(".result-button").first).to_contain_text(re.compile("khai sinh", re.I))
    page.locator(".result-button").first.click()
    expect(page.locator("[data-detail]")).to_be_visible()
    shots(page, "kiosk-procedures-1080x1920")
    page.goto(f"{platform}/queue/kiosk/{WARD}/dossiers")
    page.locator("input[name=receipt_code]").fill("KHONG-CO-MA")
    page.locator("input[name=phone_last4]").fill("1234")
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.locator("[data-result]")).to_contain_text("Không tìm thấy hồ sơ")
    shots(page, "kiosk-dossier-lookup-1080x1920")


def test_the_board_shows_a_new_call_without_reload(platform, open_page, shots, officer_headers):
    drain(platform, officer_headers, "quay-2")
    page = open_page(TV)
    page.goto(f"{platform}/queue/board/{WARD}")
    page.evaluate("window.__sameDocument = true")
    ticket = issue_ticket(platform, "E")
    called = call_next(platform, officer_headers, "quay-2")
    assert called["ticket_id"] == ticket["ticket_id"]
    latest = page.locator(".board-call.latest")
    expect(latest).to_contain_text(ticket["number"])
    expect(latest).to_contain_text("Quầy 2")
    assert page.evaluate("window.__sameDocument") is True  # updated live, not reloaded
    shots(page, "board-1920x1080")
    phone = open_page(PHONE)
    phone.goto(f"{platform}/queue/board/{WARD}")
    expect(phone.locator(".board-call").first).to_be_visible()
    shots(phone, "board-phone")


def test_the_counter_console_logs_in_calls_and_serves(platform, open_page, shots, officer_headers):
    drain(platform, officer_headers, "quay-1")
    ticket = issue_ticket(platform, "A", "priority")
    page = open_page(TV)
    page.goto(f"{platform}/queue/counter/{WARD}/quay-1")
    page.locator("input[name=username]").fill("canbo.songcong")
    page.locator("input[name=password]").fill("MotCua-demo-2026")
    shots(page, "counter-login-1920x1080")
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_role("button", name="Gọi số tiếp theo").click()
    expect(page.locator("[data-current-number]")).to_have_text(ticket["number"])
    expect(page.locator("[data-current-priority]")).to_be_visible()
    shots(page, "counter-calling-1920x1080")
    page.get_by_role("button", name="Hoàn thành").click()
    expect(page.locator("[data-message]")).to_contain_text(f"Đã hoàn thành số {ticket['number']}")
    progress = requests.get(f"{platform}{API}/tickets/{ticket['ticket_id']}", timeout=30).json()
    assert progress["status"] == "served"
    # A reload keeps the officer logged in (sessionStorage) and shows nobody at the counter.
    page.reload()
    expect(page.locator("[data-current-number]")).to_have_text("—")
    phone = open_page(PHONE)
    phone.goto(f"{platform}/queue/counter/{WARD}/quay-1")
    shots(phone, "counter-login-phone")


def test_the_rating_screen_records_a_score(platform, open_page, shots, officer_headers, admin_headers):
    drain(platform, officer_headers, "quay-3")
    page = open_page(TV)
    # Unpaired, the screen learns nothing (whoever holds a ticket id may rate it).
    page.goto(f"{platform}/rating/rate/{WARD}/quay-3")
    expect(page.locator("[data-unpaired]")).to_be_visible()
    latest = requests.get(f"{platform}/rating/api/v1/wards/{WARD}/counters/quay-3/latest", timeout=30)
    assert latest.status_code == 401 and latest.json()["code"] == "device_credential_required"
    # Paired once, with the link a ward admin asks for, it does.
    pairing = _post(f"{platform}/rating/api/v1/wards/{WARD}/counters/quay-3/screen-pairings", headers=admin_headers)
    assert pairing.status_code == 201, pairing.text
    page.goto(pairing.json()["pairing_url"])
    expect(page.locator("[data-idle]")).to_be_visible()
    expect(page.locator("[data-counter-name]")).to_have_text("Quầy 3")
    shots(page, "rating-idle-1920x1080")
    ticket = issue_ticket(platform, "D")
    called = call_next(platform, officer_headers, "quay-3")
    assert called["ticket_id"] == ticket["ticket_id"]
    served = _post(f"{platform}{API}/tickets/{ticket['ticket_id']}/actions", headers=officer_headers,
                   json={"action": "serve"})
    assert served.status_code == 200, served.text
    # TicketServed travels queue -> relay -> broker -> rating worker; the idle screen then
    # shows the faces by itself.
    expect(page.locator(".number-line")).to_contain_text(ticket["number"], timeout=60_000)
    shots(page, "rating-ask-1920x1080")
    page.locator("[data-score=very_satisfied]").click()
    expect(page.locator("[data-done]")).to_contain_text("Cảm ơn quý khách")
    shots(page, "rating-thanks-1920x1080")
    again = _post(f"{platform}/rating/api/v1/ratings", json={"ticket_id": ticket["ticket_id"], "score": "satisfied"})
    assert again.status_code == 409 and again.json()["code"] == "already_rated"
    stats = wait_for(lambda: requests.get(f"{platform}/rating/api/v1/wards/{WARD}/stats", headers=officer_headers,
                                          timeout=30).json(), message="ward stats")
    assert stats["very_satisfied"] >= 1
    # Back to idle by itself after the thank-you.
    expect(page.locator("[data-idle]")).to_be_visible(timeout=20_000)
    phone = open_page(PHONE)
    phone.goto(f"{platform}/rating/rate/{WARD}/quay-3")
    shots(phone, "rating-idle-phone")
