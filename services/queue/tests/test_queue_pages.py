"""The queue's pages and the APIs behind them, against the SecantusDB server: kiosk
pairing and its device cookie, the kiosk's form (a double tap prints one ticket), the
ticket a phone follows, the board's live stream, the console's current ticket."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from motcua_common.clock import FixedClock
from motcua_queue.api import MAX_BOARD_STREAMS, create_app
from motcua_queue.bootstrap import prepare
from motcua_queue.devices import COOKIE_NAME
from motcua_queue.store import TICKETS

WARD = "tn-song-cong"
BASE = "/queue/api/v1"


NINE_IN_SONG_CONG = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 09:00 in Sông Công


def _app(settings, verifier, demo: bool):
    prepare(settings, demo=True)  # the demo wards, services and counters
    return create_app(replace(settings, demo=demo), verifier=verifier, clock=FixedClock(NINE_IN_SONG_CONG))


@pytest.fixture
def app(settings, verifier):
    app = _app(settings, verifier, demo=False)
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def demo_app(settings, verifier):
    app = _app(settings, verifier, demo=True)
    yield app
    app.extensions["motcua"].db.client.close()


def pair(client, token) -> str:
    answer = client.post(f"{BASE}/wards/{WARD}/kiosk-pairings", headers=token("ward_admin", WARD))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["pairing_url"].split("localhost", 1)[1]


# ---------------------------------------------------------------- pairing a kiosk
def test_an_unpaired_kiosk_asks_to_be_paired_and_issues_nothing(app, service_db):
    client = app.test_client()
    page = client.get(f"/queue/kiosk/{WARD}").get_data(as_text=True)
    assert "chưa được ghép nối" in page and "data-service-code" not in page
    assert client.post(f"/queue/kiosk/{WARD}/tickets", data={"service_code": "A"}).status_code == 403
    assert service_db("queue")[TICKETS].count_documents({}) == 0


def test_a_pairing_link_leaves_a_device_credential_that_issues_until_revoked(app, token, service_db):
    client = app.test_client()
    assert client.post(f"{BASE}/wards/{WARD}/kiosk-pairings", headers=token("officer", WARD)).status_code == 403
    assert client.post(f"{BASE}/wards/{WARD}/kiosk-pairings", headers=token("ward_admin", "dn-hai-chau")).status_code == 403
    link = pair(client, token)
    opened = client.get(link)
    assert opened.status_code == 303
    cookie = client.get_cookie(COOKIE_NAME, path="/queue/")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert "data-service-code" in client.get(f"/queue/kiosk/{WARD}").get_data(as_text=True)
    # The form and the JSON API both take the device cookie.
    assert client.post(f"/queue/kiosk/{WARD}/tickets", data={"service_code": "A"}).status_code == 303
    assert client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "A"}).status_code == 201
    # The link works once.
    assert app.test_client().get(link).status_code == 410
    # A kiosk of one ward issues nothing for another.
    assert client.post(f"{BASE}/wards/dn-hai-chau/tickets", json={"service_code": "A"}).status_code == 403
    [device] = client.get(f"{BASE}/wards/{WARD}/kiosks", headers=token("ward_admin", WARD)).get_json()
    assert device["status"] == "active"
    revoked = client.delete(f"{BASE}/wards/{WARD}/kiosks/{device['device_id']}", headers=token("ward_admin", WARD))
    assert revoked.status_code == 204
    assert client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "A"}).status_code == 401
    assert service_db("queue")[TICKETS].count_documents({}) == 2


def test_a_forged_cookie_is_worth_nothing(app):
    client = app.test_client()
    client.set_cookie(COOKIE_NAME, "eyJkZXZpY2VfaWQiOiJ4Iiwid2FyZF9pZCI6InRuLXNvbmctY29uZyJ9.forged", path="/queue/")
    assert client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "A"}).status_code == 401


def test_an_expired_pairing_link_is_refused(app, token):
    client = app.test_client()
    link = pair(client, token)
    app.extensions["motcua"].clock.advance(minutes=16)
    assert client.get(link).status_code == 410
    assert client.get_cookie(COOKIE_NAME, path="/queue/") is None


# ---------------------------------------------------------------- the kiosk's form
def test_the_kiosk_form_issues_a_ticket_and_shows_the_slip(demo_app, service_db):
    client = demo_app.test_client()
    page = client.get(f"/queue/kiosk/{WARD}").get_data(as_text=True)
    assert page.count("data-service-code=") == 6
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    first = client.post(f"/queue/kiosk/{WARD}/tickets", data={"service_code": "B", "priority": "priority",
                                                              "form_token": token})
    again = client.post(f"/queue/kiosk/{WARD}/tickets", data={"service_code": "B", "priority": "priority",
                                                              "form_token": token})
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]  # a double tap prints one ticket
    assert service_db("queue")[TICKETS].count_documents({}) == 1
    slip = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "B001" in slip and "ƯU TIÊN" in slip and "Chứng thực" in slip and "<svg" in slip
    assert "09:00" in slip  # the office's local time
    ticket_id = first.headers["Location"].rsplit("/", 1)[1]
    assert f"/queue/ticket/{ticket_id}" in slip  # the QR code's link, spelled out too


def test_an_unknown_service_goes_back_to_the_start(demo_app):
    answer = demo_app.test_client().post(f"/queue/kiosk/{WARD}/tickets", data={"service_code": "Z"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("error=service")


@pytest.mark.parametrize("path", ["/queue/kiosk/no-such-ward", "/queue/board/no-such-ward",
                                  f"/queue/counter/{WARD}/quay-9", "/queue/ticket/no-such-ticket"])
def test_unknown_things_have_a_vietnamese_404_page(demo_app, path):
    answer = demo_app.test_client().get(path)
    assert answer.status_code == 404 and answer.content_type.startswith("text/html")
    assert "Không tìm thấy" in answer.get_data(as_text=True)


# ---------------------------------------------------------------- following a ticket, the console
def test_a_ticket_is_followed_from_waiting_to_called(demo_app, token):
    client, officer = demo_app.test_client(), token("officer", WARD)
    first = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "A"}).get_json()
    second = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "A"}).get_json()
    progress = client.get(f"{BASE}/tickets/{second['ticket_id']}").get_json()
    assert (progress["status"], progress["waiting_ahead"]) == ("waiting", 1)
    assert client.get(f"{BASE}/wards/{WARD}/counters/quay-1/current", headers=officer).status_code == 204
    client.post(f"{BASE}/wards/{WARD}/counters/quay-1/call-next", headers=officer)
    current = client.get(f"{BASE}/wards/{WARD}/counters/quay-1/current", headers=officer).get_json()
    assert current["ticket_id"] == first["ticket_id"]
    assert client.get(f"{BASE}/wards/{WARD}/counters/quay-1/current").status_code == 401
    page = client.get(f"/queue/ticket/{first['ticket_id']}").get_data(as_text=True)
    assert "Mời quý khách đến" in page and "Quầy 1" in page
    assert client.get(f"{BASE}/tickets/{second['ticket_id']}").get_json()["waiting_ahead"] == 0


# ---------------------------------------------------------------- the board
def test_the_board_page_and_its_stream_show_the_calls(demo_app, token):
    client, officer = demo_app.test_client(), token("officer", WARD)
    ticket = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "C"}).get_json()
    client.post(f"{BASE}/wards/{WARD}/counters/quay-2/call-next", headers=officer)
    page = client.get(f"/queue/board/{WARD}").get_data(as_text=True)
    assert ticket["number"] in page and "Quầy 2" in page
    stream = client.get(f"{BASE}/wards/{WARD}/board/stream", buffered=False)
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    chunks = iter(stream.response)
    assert next(chunks).startswith(b"retry:")
    event = next(chunks).decode()
    assert event.startswith("event: board\n")
    board = json.loads(event.split("data: ", 1)[1])
    assert board["serving"][0]["number"] == ticket["number"]
    stream.close()


def test_board_streams_are_bounded_per_process(demo_app):
    streams = demo_app.extensions["motcua"].board_streams
    for _ in range(MAX_BOARD_STREAMS):
        assert streams.acquire(blocking=False)
    try:
        refused = demo_app.test_client().get(f"{BASE}/wards/{WARD}/board/stream")
        assert refused.status_code == 503 and refused.get_json()["code"] == "too_many_streams"
        assert refused.headers["Retry-After"] == "5"
    finally:
        for _ in range(MAX_BOARD_STREAMS):
            streams.release()
