"""Device health against the SecantusDB server: heartbeats from a paired kiosk, an officer's
counter console and public boards (limited per address, capped per ward), their 422s, the
ward's devices and the silent flag on a fixed clock, the scrape-time metrics, the pages
that carry the heartbeat, and the "Thiết bị" section of the ward admin's page."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from motcua_common.clock import FixedClock
from motcua_common.web_session import SESSION_COOKIE
from motcua_queue import heartbeats
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare
from motcua_queue.heartbeats import DeviceHealthCollector

WARD, OTHER_WARD = "dn-hai-chau", "hn-ba-dinh"
BASE = "/queue/api/v1"
BEAT = f"{BASE}/wards/{WARD}/devices/heartbeat"
DEVICES = f"{BASE}/wards/{WARD}/devices"
NINE_MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 09:00 in Đà Nẵng


def board_id(n: int) -> str:
    return f"board{n:04d}abcdefghijkl"


@pytest.fixture
def clock():
    return FixedClock(NINE_MONDAY)


def _app(settings, verifier, clock, demo=False):
    prepare(settings, demo=True)
    return create_app(replace(settings, demo=demo), verifier=verifier, clock=clock)


@pytest.fixture
def app(settings, verifier, clock):
    app = _app(settings, verifier, clock)
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def client(app):
    return app.test_client()


def paired_kiosk(app, token):
    """A test client holding a paired kiosk's device cookie, and the device's id."""
    kiosk, admin = app.test_client(), token("ward_admin", WARD)
    before = {d["device_id"] for d in kiosk.get(f"{BASE}/wards/{WARD}/kiosks", headers=admin).get_json()}
    answer = kiosk.post(f"{BASE}/wards/{WARD}/kiosk-pairings", headers=admin)
    assert kiosk.get(answer.get_json()["pairing_url"].split("localhost", 1)[1]).status_code == 303
    [device_id] = {d["device_id"] for d in kiosk.get(f"{BASE}/wards/{WARD}/kiosks", headers=admin).get_json()} - before
    return kiosk, device_id


def board_beat(client, n=1, address="10.0.0.1", ward=WARD, **body):
    return client.post(f"{BASE}/wards/{ward}/devices/heartbeat", json={"kind": "board", "device_id": board_id(n), **body},
                       environ_base={"REMOTE_ADDR": address})


def listed(client, token, role="officer"):
    answer = client.get(DEVICES, headers=token(role, WARD if role != "monitor" else None))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {(d["kind"], d["device_id"]): d for d in answer.get_json()}


# ---------------------------------------------------------------- who may send
def test_a_paired_kiosk_reports_with_its_device_cookie(app, token):
    kiosk, device_id = paired_kiosk(app, token)
    answer = kiosk.post(BEAT, json={"kind": "kiosk", "printer": "error", "app_version": "0.1.0", "online": True,
                                    "missed_beats": 2, "page_loaded_at": "2026-03-02T01:00:00Z",
                                    "device_id": board_id(7)})   # ignored: the cookie names the kiosk
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"kind": "kiosk", "device_id": device_id, "last_seen_at": "2026-03-02T02:00:00.000Z",
                                 "interval_seconds": 60}
    row = listed(app.test_client(), token)[("kiosk", device_id)]
    assert row["printer"] == "error" and row["silent"] is False and row["missed_beats"] == 2
    assert row["uptime_seconds"] == 3600 and row["app_version"] == "0.1.0" and not row["anonymous"]
    # Without its cookie, or revoked, the kiosk is nobody.
    assert app.test_client().post(BEAT, json={"kind": "kiosk"}).status_code == 401
    kiosk.delete(f"{BASE}/wards/{WARD}/kiosks/{device_id}", headers=token("ward_admin", WARD))
    assert kiosk.post(BEAT, json={"kind": "kiosk"}).status_code == 401
    assert ("kiosk", device_id) not in listed(app.test_client(), token)


def test_a_kiosk_token_of_another_ward_and_an_officer_are_refused_as_kiosks(client, token):
    assert client.post(BEAT, json={"kind": "kiosk"}, headers=token("kiosk", OTHER_WARD)).status_code == 403
    assert client.post(BEAT, json={"kind": "kiosk"}, headers=token("officer", WARD)).status_code == 403
    assert client.post(BEAT, json={"kind": "kiosk"}, headers=token("kiosk", WARD, subject="kiosk-sanh-1")).status_code == 200


def test_with_demo_an_unpaired_kiosk_reports_like_a_board(settings, verifier, clock):
    app = _app(settings, verifier, clock, demo=True)
    try:
        answer = app.test_client().post(BEAT, json={"kind": "kiosk", "device_id": board_id(1), "printer": "ok"})
        assert answer.status_code == 200 and answer.get_json()["device_id"] == board_id(1)
    finally:
        app.extensions["motcua"].db.client.close()


def test_an_officers_console_reports_for_a_counter_of_the_ward(client, token):
    officer = token("officer", WARD)
    answer = client.post(BEAT, json={"kind": "counter", "counter_id": "quay-2"}, headers=officer)
    assert answer.status_code == 200 and answer.get_json()["device_id"] == "quay-2"
    row = listed(client, token)[("counter", "quay-2")]
    assert row["name"] == "Quầy 2" and row["counter_id"] == "quay-2" and row["printer"] is None
    assert client.post(BEAT, json={"kind": "counter", "counter_id": "quay-2"}).status_code == 401
    assert client.post(BEAT, json={"kind": "counter", "counter_id": "quay-2"},
                       headers=token("officer", OTHER_WARD)).status_code == 403
    assert client.post(BEAT, json={"kind": "counter", "counter_id": "quay-2"},
                       headers=token("citizen", WARD)).status_code == 403
    unknown = client.post(BEAT, json={"kind": "counter", "counter_id": "quay-9"}, headers=officer)
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"] == "counter_id"


def test_anonymous_boards_are_welcome_within_limits(client, service_db):
    for n in range(heartbeats.MAX_ANONYMOUS_DEVICES_PER_WARD):
        assert board_beat(client, n).status_code == 200
    # A known board keeps reporting; a new one beyond the handful is refused.
    assert board_beat(client, 0).status_code == 200
    refused = board_beat(client, 99)
    assert refused.status_code == 409 and refused.get_json()["code"] == "device_limit_reached"
    # ... in this ward only; another ward has its own handful.
    assert board_beat(client, 99, ward=OTHER_WARD).status_code == 200
    assert service_db("queue")["device_heartbeats"].count_documents({"ward_id": WARD}) == 8
    # A rating screen beside a counter is a self-declared device too.
    assert client.post(BEAT, json={"kind": "rating_screen", "device_id": board_id(98), "counter_id": "quay-1"},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"}).get_json()["code"] == "device_limit_reached"


def test_anonymous_heartbeats_are_limited_per_address_and_ward(client, clock):
    for _ in range(heartbeats.ANONYMOUS_HEARTBEATS_PER_MINUTE):
        assert board_beat(client, 1).status_code == 200
    limited = board_beat(client, 1)
    assert limited.status_code == 429 and limited.get_json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert board_beat(client, 2, address="10.0.0.2").status_code == 200       # another address
    assert board_beat(client, 1, ward=OTHER_WARD).status_code == 200           # another ward
    clock.advance(minutes=1)
    assert board_beat(client, 1).status_code == 200


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("body,field", [
    ({}, "kind"),
    ({"kind": "printer"}, "kind"),
    ({"kind": "board"}, "device_id"),
    ({"kind": "board", "device_id": "short"}, "device_id"),
    ({"kind": "board", "device_id": "x" * 65}, "device_id"),
    ({"kind": "board", "device_id": "<script>alert(1)</script>"}, "device_id"),
    ({"kind": "board", "device_id": board_id(1), "printer": "ok"}, "printer"),
    ({"kind": "board", "device_id": board_id(1), "counter_id": "quay-1"}, "counter_id"),
    ({"kind": "kiosk", "printer": "jammed"}, "printer"),
    ({"kind": "counter"}, "counter_id"),
    ({"kind": "counter", "counter_id": "Quầy 1"}, "counter_id"),
    ({"kind": "board", "device_id": board_id(1), "page_loaded_at": "yesterday"}, "page_loaded_at"),
    ({"kind": "board", "device_id": board_id(1), "page_loaded_at": "2026-03-02T01:00:00"}, "page_loaded_at"),
    ({"kind": "board", "device_id": board_id(1), "page_loaded_at": "2026-03-02T03:00:00Z"}, "page_loaded_at"),
    ({"kind": "board", "device_id": board_id(1), "page_loaded_at": "2024-01-01T00:00:00Z"}, "page_loaded_at"),
    ({"kind": "board", "device_id": board_id(1), "app_version": "1" * 33}, "app_version"),
    ({"kind": "board", "device_id": board_id(1), "online": "yes"}, "online"),
    ({"kind": "board", "device_id": board_id(1), "missed_beats": -1}, "missed_beats"),
    ({"kind": "board", "device_id": board_id(1), "missed_beats": True}, "missed_beats"),
    ({"kind": "board", "device_id": board_id(1), "missed_beats": 1.5}, "missed_beats"),
])
def test_a_wrong_heartbeat_is_422_with_the_field(client, token, body, field, service_db):
    answer = client.post(BEAT, json=body, headers=token("officer", WARD))
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.content_type == "application/problem+json"
    assert field in {e["field"] for e in answer.get_json()["errors"]}
    assert service_db("queue")["device_heartbeats"].count_documents({}) == 0


def test_not_json_and_an_unknown_ward(client):
    assert client.post(BEAT, data="kind=board").status_code == 415
    assert client.post(BEAT, data="[1]", content_type="application/json").status_code == 400
    unknown = client.post(f"{BASE}/wards/no-such-ward/devices/heartbeat", json={"kind": "board", "device_id": board_id(1)})
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "ward_not_found"


# ---------------------------------------------------------------- the ward's devices
def test_the_devices_list_says_who_went_silent(app, client, token, clock):
    kiosk, kiosk_id = paired_kiosk(app, token)
    never = paired_kiosk(app, token)[1]   # paired, never reported
    kiosk.post(BEAT, json={"kind": "kiosk", "printer": "ok"})
    client.post(BEAT, json={"kind": "counter", "counter_id": "quay-1"}, headers=token("officer", WARD))
    for _ in range(heartbeats.ESTABLISHED_BEATS - 1):
        board_beat(client, 1)
    assert ("board", board_id(1)) not in listed(client, token)   # a glance is not a board on the wall
    board_beat(client, 1)
    devices = listed(client, token)
    assert set(devices) == {("kiosk", kiosk_id), ("kiosk", never), ("counter", "quay-1"), ("board", board_id(1))}
    assert devices[("kiosk", never)]["silent"] is True and devices[("kiosk", never)]["last_seen_at"] is None
    assert not any(d["silent"] for key, d in devices.items() if key != ("kiosk", never))
    assert [d["kind"] for d in client.get(DEVICES, headers=token("officer", WARD)).get_json()] == \
        ["kiosk", "kiosk", "board", "counter"]

    clock.advance(minutes=10)
    kiosk.post(BEAT, json={"kind": "kiosk"})   # printer not said: the last state stands
    assert not any(d["silent"] for d in listed(client, token).values() if d["last_seen_at"])
    clock.advance(seconds=1)
    devices = listed(client, token, "monitor")
    assert devices[("kiosk", kiosk_id)]["silent"] is False and devices[("kiosk", kiosk_id)]["printer"] == "ok"
    assert devices[("counter", "quay-1")]["silent"] is True and devices[("board", board_id(1))]["silent"] is True
    assert devices[("counter", "quay-1")]["last_seen_at"] == "2026-03-02T02:00:00.000Z"


@pytest.mark.parametrize("role,ward,status", [("citizen", WARD, 403), ("officer", OTHER_WARD, 403),
                                               ("kiosk", WARD, 403), ("admin", None, 200), ("ward_admin", WARD, 200)])
def test_who_sees_the_devices(client, token, role, ward, status):
    assert client.get(DEVICES, headers=token(role, ward)).status_code == status
    assert client.get(DEVICES).status_code == 401


def test_a_deleted_counter_leaves_the_list(client, token):
    client.post(BEAT, json={"kind": "counter", "counter_id": "quay-3"}, headers=token("officer", WARD))
    assert client.delete(f"{BASE}/wards/{WARD}/counters/quay-3", headers=token("ward_admin", WARD)).status_code == 204
    assert ("counter", "quay-3") not in listed(client, token)


# ---------------------------------------------------------------- metrics
def metric(text: str, name: str) -> dict:
    [family] = [f for f in text_string_to_metric_families(text) if f.name == name]
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_the_metrics_carry_last_contact_printer_and_opening(app, client, token, clock):
    kiosk, kiosk_id = paired_kiosk(app, token)
    kiosk.post(BEAT, json={"kind": "kiosk", "printer": "error"})
    client.post(BEAT, json={"kind": "counter", "counter_id": "quay-1"}, headers=token("officer", WARD))
    board_beat(client, 3)   # one heartbeat: not a board yet
    text = client.get("/queue/metrics").get_data(as_text=True)
    seen = metric(text, "motcua_device_last_seen_timestamp_seconds")
    assert seen == {
        (("device_id", kiosk_id), ("kind", "kiosk"), ("ward_id", WARD)): NINE_MONDAY.timestamp(),
        (("device_id", "quay-1"), ("kind", "counter"), ("ward_id", WARD)): NINE_MONDAY.timestamp(),
    }
    assert metric(text, "motcua_device_printer_ok") == {(("device_id", kiosk_id), ("ward_id", WARD)): 0.0}
    assert metric(text, "motcua_queue_office_open")[(("ward_id", WARD),)] == 1.0   # the demo wards never close
    assert text.count("# TYPE motcua_device_last_seen_timestamp_seconds gauge") == 1


def test_the_collector_reads_the_database_at_most_every_30_seconds(app, client, token, clock):
    deps = app.extensions["motcua"]
    now = [0.0]
    collector = DeviceHealthCollector(deps, monotonic=lambda: now[0])
    client.post(BEAT, json={"kind": "counter", "counter_id": "quay-1"}, headers=token("officer", WARD))
    assert len(collector.snapshot().last_seen) == 1
    client.post(BEAT, json={"kind": "counter", "counter_id": "quay-2"}, headers=token("officer", WARD))
    now[0] = 29.0
    assert len(collector.snapshot().last_seen) == 1
    now[0] = 30.0
    assert len(collector.snapshot().last_seen) == 2


def test_the_office_is_closed_in_the_metric_outside_its_hours(app, client, token, clock):
    hours = {"always_open": False, "weekly": {"mon": [{"opens": "07:30", "closes": "11:30"}]}, "closed_days": []}
    assert client.put(f"{BASE}/wards/{WARD}/opening-hours", json=hours,
                      headers=token("ward_admin", WARD)).status_code == 200
    collector = DeviceHealthCollector(app.extensions["motcua"])
    assert dict(collector.snapshot().office_open)[WARD] == 1.0
    clock.advance(hours=3)   # 12:00: lunch
    assert dict(DeviceHealthCollector(app.extensions["motcua"]).snapshot().office_open)[WARD] == 0.0


# ---------------------------------------------------------------- pages
def heartbeat_config(page: str) -> dict | None:
    found = re.search(r'<script type="application/json" id="heartbeat-config">(.*?)</script>', page, re.S)
    return json.loads(found.group(1)) if found else None


def test_the_pages_that_stay_on_screen_carry_the_heartbeat(app, client, token):
    board = heartbeat_config(client.get(f"/queue/board/{WARD}").get_data(as_text=True))
    assert board["kind"] == "board" and board["url"] == BEAT and board["interval_seconds"] == 60
    assert "heartbeat.js" in client.get(f"/queue/board/{WARD}").get_data(as_text=True)
    counter = heartbeat_config(client.get(f"/queue/counter/{WARD}/quay-2").get_data(as_text=True))
    assert counter["kind"] == "counter" and counter["counter_id"] == "quay-2"
    assert heartbeat_config(client.get(f"/queue/kiosk/{WARD}").get_data(as_text=True)) is None   # unpaired
    assert heartbeat_config(client.get("/queue/board/no-such-ward").get_data(as_text=True)) is None
    kiosk, _ = paired_kiosk(app, token)
    assert heartbeat_config(kiosk.get(f"/queue/kiosk/{WARD}").get_data(as_text=True))["kind"] == "kiosk"
    assert heartbeat_config(kiosk.get(f"/queue/kiosk/{WARD}/rate").get_data(as_text=True))["kind"] == "kiosk"
    assert client.get("/queue/static/heartbeat.js").status_code == 200


# ---------------------------------------------------------------- the ward admin's page
def test_the_admin_page_shows_the_devices_and_marks_the_silent_ones(app, client, token, clock):
    kiosk, kiosk_id = paired_kiosk(app, token)
    kiosk.post(BEAT, json={"kind": "kiosk", "printer": "error"})
    clock.advance(minutes=20)
    client.post(BEAT, json={"kind": "counter", "counter_id": "quay-1"}, headers=token("officer", WARD))
    for _ in range(heartbeats.ESTABLISHED_BEATS):
        board_beat(client, 5)
    admin = app.test_client()
    jwt = token("ward_admin", WARD, subject=f"ward_admin-{WARD}")["Authorization"].split(" ", 1)[1]
    admin.set_cookie(SESSION_COOKIE, jwt, path="/")
    page = admin.get(f"/queue/admin/{WARD}").get_data(as_text=True)
    section = page[page.index('id="devices"'):]
    assert "<h2>Thiết bị</h2>" in section and 'href="#devices"' in page
    kiosk_row = re.search(rf'<tr data-device="kiosk:{kiosk_id}"[^>]*>.*?</tr>', section, re.S).group(0)
    assert "data-silent" in kiosk_row and "Mất liên lạc" in kiosk_row and "Lỗi in" in kiosk_row
    assert "20 phút trước" in kiosk_row and "09:00 02/03/2026" in kiosk_row
    counter_row = re.search(r'<tr data-device="counter:quay-1"[^>]*>.*?</tr>', section, re.S).group(0)
    assert "data-silent" not in counter_row and "Đang hoạt động" in counter_row and "Quầy 1" in counter_row
    # A self-declared board the office no longer has can be removed.
    csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    forgot = admin.post(f"/queue/admin/{WARD}/devices/board/{board_id(5)}/forget", data={"csrf_token": csrf_token})
    assert forgot.status_code == 303 and "saved=device_forgotten" in forgot.headers["Location"]
    assert f"board:{board_id(5)}" not in admin.get(forgot.headers["Location"]).get_data(as_text=True)
    again = admin.post(f"/queue/admin/{WARD}/devices/board/{board_id(5)}/forget", data={"csrf_token": csrf_token})
    assert again.status_code == 404
