"""A ward's queue configured by its admin, against the SecantusDB server: a ward learnt from
WardOpened (once, whatever the redeliveries), its services and counters saved through the
API (who may, what is refused), its opening hours and the office_closed refusal outside
them (the injected clock), always_open, and the kiosk's closed screen."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from motcua_common.clock import FixedClock
from motcua_common.events import new_event, parse_envelope
from motcua_queue import counters, hours, wards
from motcua_queue.api import create_app
from motcua_queue.bootstrap import SYSTEM, prepare
from motcua_queue.deps import build_deps
from motcua_queue.store import TICKETS, WARDS

BASE = "/queue/api/v1"
NEW = "tn-phu-binh"   # a real ward opened by identity, no demo data
OPENED = {"ward_id": NEW, "official_code": "05473", "name": "Phường Phú Bình", "province": "Tỉnh Thái Nguyên",
          "province_code": "019", "kind": "phường", "target_population": 7000}


def ict(year, month, day, hour, minute=0) -> datetime:
    """A wall-clock time in Vietnam, as the UTC instant the clock holds."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).astimezone(timezone.utc)


MONDAY_0800 = ict(2026, 12, 7, 8)       # Monday 07/12/2026, 08:00
MONDAY_0600 = ict(2026, 12, 7, 6)
MONDAY_1200 = ict(2026, 12, 7, 12)
SUNDAY_1000 = ict(2026, 12, 6, 10)
HOLIDAY_0900 = ict(2026, 9, 2, 9)       # Wednesday 02/09/2026, Quốc khánh


@pytest.fixture
def clock():
    return FixedClock(MONDAY_0800)


@pytest.fixture
def deps(settings, service_db, clock):
    prepare(settings)
    return build_deps(settings, db=service_db("queue"), verifier=None, devices=None, clock=clock)


@pytest.fixture
def app(settings, verifier, clock, deps):
    wards.record_ward_opened(deps, None, OPENED)
    app = create_app(settings, verifier=verifier, clock=clock)
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ward_admin(token):
    return token("ward_admin", NEW, subject="truongbp-phubinh")


def configure(client, headers):
    assert client.put(f"{BASE}/wards/{NEW}/services/HT", json={"name": "Hộ tịch", "prefix": "A"},
                      headers=headers).status_code == 200
    assert client.put(f"{BASE}/wards/{NEW}/counters/quay-1", json={"name": "Quầy 1", "service_codes": ["HT"]},
                      headers=headers).status_code == 200


def ward_opened_event(**changes) -> dict:
    return new_event("WardOpened", NEW, {**OPENED, **changes})


# ---------------------------------------------------------------- WardOpened
def test_ward_opened_is_recorded_once_with_default_hours(deps, service_db):
    event = parse_envelope(ward_opened_event())
    assert [wards.on_ward_opened(deps, None, event) for _ in range(2)] == ["processed", "duplicate"]
    [ward] = service_db("queue")[WARDS].find()
    assert (ward["_id"], ward["name"], ward["official_code"], ward["province"]) == (
        NEW, "Phường Phú Bình", "05473", "Tỉnh Thái Nguyên")
    assert ward["opening_hours"] == hours.default_hours()
    assert ward["opening_hours"]["weekly"]["mon"] == [{"opens": "07:30", "closes": "11:30"},
                                                      {"opens": "13:30", "closes": "17:00"}]
    assert ward["opening_hours"]["weekly"]["sat"] == [] == ward["opening_hours"]["weekly"]["sun"]


def test_a_ward_opened_again_keeps_its_configuration(client, ward_admin, deps, service_db):
    configure(client, ward_admin)
    always = {"always_open": True, "weekly": {}, "closed_days": []}
    assert client.put(f"{BASE}/wards/{NEW}/opening-hours", json=always, headers=ward_admin).status_code == 200
    wards.on_ward_opened(deps, None, parse_envelope(ward_opened_event(target_population=7100)))
    ward = service_db("queue")[WARDS].find_one({"_id": NEW})
    assert ward["opening_hours"]["always_open"] is True and ward["target_population"] == 7100
    assert client.get(f"{BASE}/wards/{NEW}/services").get_json() == [{"code": "HT", "name": "Hộ tịch", "prefix": "A"}]


# ---------------------------------------------------------------- services and counters
def test_the_ward_admin_configures_services_and_counters(client, ward_admin, token):
    answer = client.put(f"{BASE}/wards/{NEW}/services/HT", json={"name": "  Hộ   tịch ", "prefix": "A"},
                        headers=ward_admin)
    assert answer.status_code == 200 and answer.get_json() == {"code": "HT", "name": "Hộ tịch", "prefix": "A"}
    assert client.put(f"{BASE}/wards/{NEW}/services/CT", json={"name": "Chứng thực", "prefix": "B"},
                      headers=token("admin")).status_code == 200
    counter = client.put(f"{BASE}/wards/{NEW}/counters/quay-1", json={"name": "Quầy 1", "service_codes": ["HT", "CT"]},
                         headers=ward_admin)
    assert counter.status_code == 200
    assert counter.get_json() == {"counter_id": "quay-1", "name": "Quầy 1", "service_codes": ["HT", "CT"]}
    # An update, seen at once by the same process (the reference cache was cleared).
    assert client.put(f"{BASE}/wards/{NEW}/services/HT", json={"name": "Hộ tịch", "prefix": "H"},
                      headers=ward_admin).status_code == 200
    assert {"code": "HT", "name": "Hộ tịch", "prefix": "H"} in client.get(f"{BASE}/wards/{NEW}/services").get_json()
    assert client.get(f"{BASE}/wards/{NEW}/counters").get_json() == [counter.get_json()]
    issued = client.post(f"{BASE}/wards/{NEW}/tickets", json={"service_code": "HT"}, headers=ward_admin)
    assert issued.status_code == 201 and issued.get_json()["number"] == "H001"


def test_a_ward_that_is_not_open_is_404(client, ward_admin, token):
    for path, body in (("services/HT", {"name": "Hộ tịch", "prefix": "A"}),
                       ("counters/quay-1", {"name": "Quầy 1", "service_codes": []}),
                       ("opening-hours", {"weekly": {}})):
        response = client.put(f"{BASE}/wards/no-such-ward/{path}", json=body, headers=token("admin"))
        assert response.status_code == 404 and response.get_json()["code"] == "ward_not_found"


@pytest.mark.parametrize("role,ward", [("officer", NEW), ("leader", NEW), ("ward_admin", "dn-hai-chau"),
                                       ("monitor", None), ("citizen", NEW), ("kiosk", NEW)])
def test_only_the_wards_admin_and_the_platform_admin_configure(client, token, role, ward):
    headers = token(role, ward)
    for path, body in (("services/HT", {"name": "Hộ tịch", "prefix": "A"}),
                       ("counters/quay-1", {"name": "Quầy 1", "service_codes": ["HT"]}),
                       ("opening-hours", {"always_open": True, "weekly": {}})):
        response = client.put(f"{BASE}/wards/{NEW}/{path}", json=body, headers=headers)
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["code"] == "forbidden"
    assert client.put(f"{BASE}/wards/{NEW}/services/HT", json={"name": "x", "prefix": "A"}).status_code == 401


@pytest.mark.parametrize("code,body,fields", [
    ("HT", {"prefix": "A"}, ["name"]),
    ("HT", {"name": "", "prefix": "A"}, ["name"]),
    ("HT", {"name": "x" * 121, "prefix": "A"}, ["name"]),
    ("HT", {"name": "Hộ\u202etịch", "prefix": "A"}, ["name"]),
    ("HT", {"name": "Hộ\x1b[31mtịch", "prefix": "A"}, ["name"]),
    ("HT", {"name": "Hộ tịch", "prefix": "a"}, ["prefix"]),
    ("HT", {"name": "Hộ tịch", "prefix": "ABC"}, ["prefix"]),
    ("HT", {"name": "Hộ tịch", "prefix": 1}, ["prefix"]),
    ("ht", {"name": "Hộ tịch", "prefix": "A"}, ["code"]),
    ("X" * 17, {"name": "Hộ tịch", "prefix": "A"}, ["code"]),
    ("HT", {"name": 5, "prefix": ""}, ["name", "prefix"]),
])
def test_a_bad_service_is_422_and_nothing_is_written(client, ward_admin, code, body, fields):
    response = client.put(f"{BASE}/wards/{NEW}/services/{code}", json=body, headers=ward_admin)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed" and [e["field"] for e in problem["errors"]] == fields
    assert client.get(f"{BASE}/wards/{NEW}/services").get_json() == []


def test_a_prefix_is_unique_in_the_ward(client, ward_admin):
    configure(client, ward_admin)
    response = client.put(f"{BASE}/wards/{NEW}/services/CT", json={"name": "Chứng thực", "prefix": "A"},
                          headers=ward_admin)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "prefix"
    # Keeping its own prefix is fine.
    assert client.put(f"{BASE}/wards/{NEW}/services/HT", json={"name": "Hộ tịch mới", "prefix": "A"},
                      headers=ward_admin).status_code == 200


@pytest.mark.parametrize("counter_id,body,fields", [
    ("quay-1", {"name": "Quầy 1", "service_codes": ["HT", "ZZ"]}, ["service_codes"]),
    ("quay-1", {"name": "Quầy 1", "service_codes": []}, ["service_codes"]),
    ("quay-1", {"name": "Quầy 1", "service_codes": "HT"}, ["service_codes"]),
    ("quay-1", {"service_codes": ["HT"]}, ["name"]),
    ("Quầy 1", {"name": "Quầy 1", "service_codes": ["HT"]}, ["counter_id"]),
])
def test_a_bad_counter_is_422(client, ward_admin, counter_id, body, fields):
    configure(client, ward_admin)
    response = client.put(f"{BASE}/wards/{NEW}/counters/{counter_id}", json=body, headers=ward_admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == fields
    assert client.get(f"{BASE}/wards/{NEW}/counters").get_json()[0]["service_codes"] == ["HT"]


def test_bad_json_is_a_problem(client, ward_admin):
    response = client.put(f"{BASE}/wards/{NEW}/services/HT", data="{", content_type="application/json",
                          headers=ward_admin)
    assert response.status_code == 400 and response.content_type == "application/problem+json"
    assert client.put(f"{BASE}/wards/{NEW}/services/HT", json=[1], headers=ward_admin).status_code == 400


def test_deleting_a_service_with_tickets_waiting_today_is_409(client, ward_admin):
    configure(client, ward_admin)
    assert client.post(f"{BASE}/wards/{NEW}/tickets", json={"service_code": "HT"}, headers=ward_admin).status_code == 201
    refused = client.delete(f"{BASE}/wards/{NEW}/services/HT", headers=ward_admin)
    assert refused.status_code == 409 and refused.get_json()["code"] == "service_has_waiting_tickets"
    assert client.post(f"{BASE}/wards/{NEW}/counters/quay-1/call-next", headers=ward_admin).status_code == 200
    # Called, not waiting: the counter is busy with it, the service may go.
    busy = client.delete(f"{BASE}/wards/{NEW}/counters/quay-1", headers=ward_admin)
    assert busy.status_code == 409 and busy.get_json()["code"] == "counter_in_use"
    assert client.delete(f"{BASE}/wards/{NEW}/services/HT", headers=ward_admin).status_code == 204
    assert client.get(f"{BASE}/wards/{NEW}/services").get_json() == []
    assert client.get(f"{BASE}/wards/{NEW}/counters").get_json()[0]["service_codes"] == []
    assert client.delete(f"{BASE}/wards/{NEW}/services/HT", headers=ward_admin).status_code == 404


def test_a_prefix_printed_today_by_another_service_is_409(client, ward_admin):
    configure(client, ward_admin)
    assert client.post(f"{BASE}/wards/{NEW}/tickets", json={"service_code": "HT"}, headers=ward_admin).status_code == 201
    assert client.put(f"{BASE}/wards/{NEW}/services/HT", json={"name": "Hộ tịch", "prefix": "H"},
                      headers=ward_admin).status_code == 200
    # "A" is free again, but A001 was printed today for HT: a new service would print it again.
    response = client.put(f"{BASE}/wards/{NEW}/services/CT", json={"name": "Chứng thực", "prefix": "A"},
                          headers=ward_admin)
    assert response.status_code == 409 and response.get_json()["code"] == "prefix_used_today"


# ---------------------------------------------------------------- opening hours
def issue_at(client, clock, moment, headers):
    clock.at = moment
    return client.post(f"{BASE}/wards/{NEW}/tickets", json={"service_code": "HT"}, headers=headers)


def test_the_default_hours_are_public(client):
    answer = client.get(f"{BASE}/wards/{NEW}/opening-hours").get_json()
    assert answer["always_open"] is False and answer["closed_days"] == []
    assert answer["weekly"]["fri"] == [{"opens": "07:30", "closes": "11:30"}, {"opens": "13:30", "closes": "17:00"}]
    assert answer["open_now"] is True and answer["opens_at"] is None


def test_tickets_are_issued_in_opening_hours_only(client, clock, ward_admin, service_db):
    configure(client, ward_admin)
    assert issue_at(client, clock, MONDAY_0800, ward_admin).status_code == 201

    early = issue_at(client, clock, MONDAY_0600, ward_admin)
    assert early.status_code == 409 and early.content_type == "application/problem+json"
    problem = early.get_json()
    assert problem["code"] == "office_closed"
    assert problem["opens_at"] == "2026-12-07T00:30:00.000Z"   # 07:30 the same Monday
    assert "Mở cửa lại lúc 07:30 thứ Hai 07/12" in problem["detail"]

    lunch = issue_at(client, clock, MONDAY_1200, ward_admin).get_json()
    assert lunch["code"] == "office_closed" and lunch["opens_at"] == "2026-12-07T06:30:00.000Z"
    assert "nghỉ trưa" in lunch["detail"]

    sunday = issue_at(client, clock, SUNDAY_1000, ward_admin).get_json()
    assert sunday["code"] == "office_closed" and "07:30 thứ Hai 07/12" in sunday["detail"]
    assert "Chủ nhật" in sunday["detail"]

    holiday = issue_at(client, clock, HOLIDAY_0900, ward_admin).get_json()   # Wednesday 2/9
    assert holiday["code"] == "office_closed" and "Quốc khánh" in holiday["detail"]
    assert holiday["opens_at"] == "2026-09-03T00:30:00.000Z"
    # Nothing was written for the refused ones.
    assert service_db("queue")[TICKETS].count_documents({}) == 1


def test_the_wards_own_closed_days_and_sessions(client, clock, ward_admin):
    configure(client, ward_admin)
    setting = {"weekly": {"mon": [{"opens": "08:00", "closes": "12:00"}], "sat": [{"opens": "07:30", "closes": "11:30"}]},
               "closed_days": ["2026-12-07", "2026-12-07"]}
    saved = client.put(f"{BASE}/wards/{NEW}/opening-hours", json=setting, headers=ward_admin)
    assert saved.status_code == 200
    body = saved.get_json()
    assert body["closed_days"] == ["2026-12-07"] and body["weekly"]["tue"] == [] and body["open_now"] is False
    closed = issue_at(client, clock, MONDAY_0800, ward_admin).get_json()
    assert "ngày nghỉ của phường" in closed["detail"]
    assert closed["opens_at"] == "2026-12-12T00:30:00.000Z"   # Saturday 12/12 07:30, the next session
    assert issue_at(client, clock, ict(2026, 12, 12, 9), ward_admin).status_code == 201


def test_always_open_issues_at_any_hour(client, clock, ward_admin):
    configure(client, ward_admin)
    assert client.put(f"{BASE}/wards/{NEW}/opening-hours", json={"always_open": True, "weekly": {}},
                      headers=ward_admin).status_code == 200
    for moment in (MONDAY_0600, SUNDAY_1000, HOLIDAY_0900, ict(2026, 12, 8, 2)):
        assert issue_at(client, clock, moment, ward_admin).status_code == 201


def test_the_demo_wards_are_always_open(settings, verifier, token):
    clock = FixedClock(ict(2026, 12, 6, 3))   # Sunday, 03:00
    prepare(settings, demo=True)
    app = create_app(settings, verifier=verifier, clock=clock)
    try:
        client = app.test_client()
        assert client.get(f"{BASE}/wards/dn-hai-chau/opening-hours").get_json()["always_open"] is True
        assert client.post(f"{BASE}/wards/dn-hai-chau/tickets", json={"service_code": "A"},
                           headers=token("officer", "dn-hai-chau")).status_code == 201
    finally:
        app.extensions["motcua"].db.client.close()


@pytest.mark.parametrize("body,fields", [
    ({}, ["weekly"]),
    ({"weekly": {"mon": [{"opens": "7:30", "closes": "11:30"}]}}, ["weekly.mon[0].opens"]),
    ({"weekly": {"mon": [{"opens": "11:30", "closes": "07:30"}]}}, ["weekly.mon[0].closes"]),
    ({"weekly": {"mon": [{"opens": "07:30", "closes": "11:30"}, {"opens": "11:00", "closes": "17:00"}]}},
     ["weekly.mon[1].opens"]),
    ({"weekly": {"mon": [{"opens": "07:00", "closes": "08:00"}] * 3}}, ["weekly.mon"]),
    ({"weekly": {"monday": []}}, ["weekly"]),
    ({"weekly": {}, "closed_days": ["24/12/2026"]}, ["closed_days[0]"]),
    ({"weekly": {}, "always_open": "yes"}, ["always_open"]),
    ({"weekly": {"mon": "07:30-11:30"}}, ["weekly.mon"]),
])
def test_bad_opening_hours_are_422_and_change_nothing(client, ward_admin, body, fields):
    response = client.put(f"{BASE}/wards/{NEW}/opening-hours", json=body, headers=ward_admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == fields
    assert client.get(f"{BASE}/wards/{NEW}/opening-hours").get_json()["weekly"]["mon"][0]["opens"] == "07:30"


# ---------------------------------------------------------------- the kiosk outside the hours
def test_the_kiosk_shows_when_the_desk_opens_and_issues_nothing(settings, verifier, clock, deps, service_db):
    wards.record_ward_opened(deps, None, OPENED)
    counters.put_service(deps, SYSTEM, NEW, "HT", {"name": "Hộ tịch", "prefix": "A"})
    app = create_app(replace(settings, demo=True), verifier=verifier, clock=clock)   # an unpaired kiosk works
    try:
        client = app.test_client()
        clock.at = ict(2026, 12, 6, 21)   # Sunday evening
        page = client.get(f"/queue/kiosk/{NEW}").get_data(as_text=True)
        assert "Bộ phận một cửa đang nghỉ" in page
        assert "Mở cửa lại lúc <strong>07:30 thứ Hai 07/12</strong>" in page
        assert "data-service-code" not in page
        posted = client.post(f"/queue/kiosk/{NEW}/tickets", data={"service_code": "HT", "form_token": "t1"})
        assert posted.status_code == 303
        assert service_db("queue")[TICKETS].count_documents({}) == 0
        clock.at = MONDAY_0800
        assert "data-service-code" in client.get(f"/queue/kiosk/{NEW}").get_data(as_text=True)
    finally:
        app.extensions["motcua"].db.client.close()


# ---------------------------------------------------------------- the rules alone
def test_status_rules():
    local = FixedClock(MONDAY_0800)
    setting = hours.default_hours()
    assert hours.status_at(setting, local.local()).open
    friday_evening = FixedClock(ict(2026, 12, 11, 17)).local()
    status = hours.status_at(setting, friday_evening)
    assert not status.open and hours.describe_opening(status.opens_at) == "07:30 thứ Hai 14/12"
    assert hours.effective(None)["always_open"] is True    # a ward recorded before opening hours
    never = {"always_open": False, "weekly": {}, "closed_days": []}
    assert hours.status_at(never, friday_evening).opens_at is None
