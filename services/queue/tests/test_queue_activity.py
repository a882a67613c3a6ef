"""Every ward's day at the counters, made from ticket events alone (activity.py): the
handler as a plain function on the embedded database. The real worker on the real broker,
with events as an office sends them, is in tests/platform/test_centre_sees_offices.py."""
from __future__ import annotations

import pytest

from motcua_common.auth import Principal
from motcua_common.events import new_event, parse_envelope
from motcua_common.problems import Problem
from motcua_queue import activity
from motcua_queue.bootstrap import prepare
from motcua_queue.deps import build_deps

OFFICE, CENTRAL = "dn-hai-chau", "tn-song-cong"
MONITOR = Principal(subject="giamsat", role="monitor", ward_id=None)


@pytest.fixture
def deps(settings, service_db):
    prepare(settings, demo=False)
    return build_deps(settings, db=service_db("queue"), verifier=None, devices=None)


def ticket_event(event_type: str, ward: str, ticket_id: str, at: str, **extra):
    payload = {"ticket_id": ticket_id, "ward_id": ward, "service_code": "HT", **extra}
    if event_type in ("TicketIssued", "TicketCalled"):
        payload["number"] = "HT001"
    envelope = new_event(event_type, ward, payload)
    envelope["occurred_at"] = at
    return parse_envelope(envelope)


def test_a_wards_day_counts_each_ticket_once_whatever_the_order_and_repeats(deps):
    # 23:30 UTC on the 14th is 06:30 on the 15th in Vietnam: the ward's day is the 15th.
    served = ticket_event("TicketServed", OFFICE, "t1", "2026-07-15T01:00:00Z", counter_id="q1", officer_id="o1",
                          wait_seconds=600, service_seconds=300)
    for event in (served,  # the served event may come first: the line is made by whichever arrives
                  ticket_event("TicketIssued", OFFICE, "t1", "2026-07-14T23:30:00Z"),
                  ticket_event("TicketCalled", OFFICE, "t1", "2026-07-15T00:40:00Z", counter_id="q1"),
                  ticket_event("TicketCalled", OFFICE, "t1", "2026-07-15T00:45:00Z", counter_id="q1"),  # a recall
                  ticket_event("TicketIssued", OFFICE, "t2", "2026-07-15T02:00:00Z"),
                  ticket_event("TicketIssued", CENTRAL, "t3", "2026-07-15T02:00:00Z")):
        assert activity.on_ticket_event(deps, None, event) == "processed"
    assert activity.on_ticket_event(deps, None, served) == "duplicate"
    day = activity.city_day(deps, MONITOR, "2026-07-15")
    assert day["wards"] == [
        {"ward_id": OFFICE, "issued": 2, "called": 1, "served": 1, "average_wait_seconds": 600,
         "average_service_seconds": 300},
        {"ward_id": CENTRAL, "issued": 1, "called": 0, "served": 0, "average_wait_seconds": None,
         "average_service_seconds": None}]
    assert activity.ward_day(deps, MONITOR, OFFICE, "2026-07-15")["issued"] == 2
    assert activity.city_day(deps, MONITOR, "2026-07-14")["wards"] == []


def test_only_the_wards_staff_and_the_monitoring_centre_see_it(deps):
    officer = Principal(subject="canbo", role="officer", ward_id=OFFICE)
    assert activity.ward_day(deps, officer, OFFICE, "2026-07-15")["issued"] == 0
    with pytest.raises(Problem) as refused:
        activity.ward_day(deps, officer, CENTRAL, "2026-07-15")
    assert refused.value.status == 403
    with pytest.raises(Problem):
        activity.city_day(deps, officer, "2026-07-15")
    with pytest.raises(Problem) as invalid:
        activity.city_day(deps, MONITOR, "15/07/2026")
    assert invalid.value.status == 422


def test_the_api_answers_the_monitoring_centre_and_the_wards_staff(settings, verifier, token, deps):
    from motcua_queue.api import create_app
    from motcua_queue import wards

    wards.record_ward_opened(deps, None, {"ward_id": OFFICE, "name": "Phường Hải Châu"})
    activity.on_ticket_event(deps, None, ticket_event("TicketIssued", OFFICE, "t9", "2026-07-15T02:00:00Z"))
    app = create_app(settings, verifier=verifier)
    client = app.test_client()
    try:
        monitor = client.get("/queue/api/v1/activity?date=2026-07-15", headers=token("monitor"))
        assert monitor.status_code == 200, monitor.json
        assert monitor.json["wards"][0]["issued"] == 1
        staff = client.get(f"/queue/api/v1/wards/{OFFICE}/activity?date=2026-07-15", headers=token("officer", OFFICE))
        assert (staff.status_code, staff.json["issued"]) == (200, 1)
        assert client.get("/queue/api/v1/activity", headers=token("officer", OFFICE)).status_code == 403
        assert client.get("/queue/api/v1/activity").status_code == 401
        assert client.get("/queue/api/v1/wards/no-such-ward/activity", headers=token("monitor")).status_code == 404
    finally:
        app.extensions["motcua"].db.client.close()
