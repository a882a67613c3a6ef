"""POST /dossiers/{id}/actions (the workflow, by officers of the dossier's ward), reading
dossiers, and GET /wards/{ward}/stats."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from prometheus_client import REGISTRY

from motcua_common.outbox import OUTBOX

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"


# request_supplement and reject say what is missing or why (the citizen gets it by SMS).
NOTES = {"request_supplement": "Thiếu bản sao giấy khai sinh", "reject": "Không thuộc thẩm quyền của phường"}


def act(client, dossier_id, action, headers, note=None):
    note = NOTES.get(action) if note is None else note
    body = {"action": action} if note is None else {"action": action, "note": note}
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json=body, headers=headers)


def run(client, dossier_id, headers, *actions):
    for action in actions:
        response = act(client, dossier_id, action, headers)
        assert response.status_code == 200, (action, response.json)
    return response


def returned_count(on_time):
    return REGISTRY.get_sample_value("motcua_dossiers_returned_total", {"ward_id": WARD, "on_time": on_time}) or 0


def events_of(db, dossier_id):
    return [(d["routing_key"], d["envelope"]["payload"]) for d in db[OUTBOX].find().sort([("seq", 1), ("n", 1)])
            if d["envelope"]["payload"]["dossier_id"] == dossier_id]


def test_the_whole_workflow_emits_its_events(client, submit, officer, leader, dossier_db, pay_at_counter):
    dossier_id = submit().json["dossier_id"]
    pay_at_counter(dossier_id)  # HT-XNHN is level 4 with a fee: paid before processing
    before = returned_count("true")
    run(client, dossier_id, officer, "receive", "start_processing")
    run(client, dossier_id, leader, "approve")
    response = act(client, dossier_id, "return", officer, note="Đã trả tại quầy số 2")
    assert response.status_code == 200 and response.json["status"] == "returned"
    assert response.json["allowed_actions"] == []
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert [h["status"] for h in stored["history"]] == ["submitted", "received", "processing", "result_ready", "returned"]
    assert stored["history"][-1]["actor_id"] == "off-hc-1" and stored["history"][-1]["note"] == "Đã trả tại quầy số 2"
    assert stored["returned_on_time"] is True
    events = events_of(dossier_db, dossier_id)
    assert [e[0] for e in events] == ["DossierSubmitted", "DossierStatusChanged", "DossierStatusChanged",
                                      "DossierStatusChanged", "DossierResultReady", "DossierStatusChanged"]
    changed = events[1][1]
    assert changed["from_status"] == "submitted" and changed["to_status"] == "received"
    assert changed["actor_id"] == "off-hc-1" and changed["citizen_id"] == "cit-lan"
    assert changed["receipt_code"] == stored["receipt_code"] and changed["procedure_code"] == "HT-XNHN"
    assert events[4][1]["receipt_code"] == stored["receipt_code"]
    assert returned_count("true") == before + 1


def test_a_late_return_is_counted_late(client, submit, officer, leader, clock, pay_at_counter):
    dossier_id = submit().json["dossier_id"]  # due Thursday 12/3
    pay_at_counter(dossier_id)
    run(client, dossier_id, officer, "receive", "start_processing")
    run(client, dossier_id, leader, "approve")
    before = returned_count("false")
    clock.on(date(2026, 3, 13))
    run(client, dossier_id, officer, "return")
    assert returned_count("false") == before + 1


def test_a_move_the_workflow_does_not_allow_is_409(client, submit, officer, leader):
    dossier_id = submit().json["dossier_id"]
    response = act(client, dossier_id, "approve", leader)
    assert response.status_code == 409 and response.json["code"] == "invalid_transition"
    assert "Phê duyệt" in response.json["detail"]
    assert response.json["allowed_actions"] == ["receive"]
    run(client, dossier_id, officer, "receive")
    assert act(client, dossier_id, "receive", officer).status_code == 409


def test_two_officers_acting_at_once_cannot_both_move_the_dossier(app, submit, officer, dossier_db):
    dossier_id = submit().json["dossier_id"]
    barrier = threading.Barrier(4)

    def receive(_):
        client = app.test_client()
        barrier.wait()
        return act(client, dossier_id, "receive", officer).status_code

    with ThreadPoolExecutor(4) as pool:
        answers = sorted(pool.map(receive, range(4)))
    assert answers == [200, 409, 409, 409]
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert [h["status"] for h in stored["history"]] == ["submitted", "received"]
    assert len(events_of(dossier_db, dossier_id)) == 2


def test_an_unknown_action_is_422(client, submit, officer):
    dossier_id = submit().json["dossier_id"]
    response = act(client, dossier_id, "archive", officer)
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "action"


def test_only_staff_of_the_dossiers_ward_may_act(client, submit, token, citizen):
    dossier_id = submit().json["dossier_id"]
    assert act(client, dossier_id, "receive", token("officer", OTHER_WARD)).status_code == 403
    assert act(client, dossier_id, "receive", token("ward_admin", OTHER_WARD)).status_code == 403
    assert act(client, dossier_id, "receive", token("monitor")).status_code == 403
    assert act(client, dossier_id, "receive", citizen).status_code == 403
    assert act(client, dossier_id, "receive", token("ward_admin", WARD)).status_code == 200
    assert act(client, "no-such-dossier", "receive", token("officer", WARD)).status_code == 404


def test_waiting_for_a_supplement_stops_the_clock(client, submit, officer, clock, dossier_db):
    dossier_id = submit().json["dossier_id"]  # Tuesday 10/3, due Thursday 12/3
    run(client, dossier_id, officer, "receive")
    run(client, dossier_id, officer, "request_supplement")
    clock.on(date(2026, 3, 16))  # brought back on Monday: Wed, Thu, Fri, Mon waited
    response = run(client, dossier_id, officer, "receive")
    assert response.json["status"] == "received" and response.json["due_date"] == "2026-03-18"


def test_reading_a_dossier(client, submit, officer, token, citizen):
    dossier_id = submit().json["dossier_id"]
    mine = client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=citizen)
    assert mine.status_code == 200
    assert mine.json["form"]["muc_dich_su_dung"] == "Đăng ký kết hôn" and mine.json["allowed_actions"] == []
    staff = client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=officer)
    assert staff.status_code == 200 and staff.json["allowed_actions"] == ["receive"]
    stranger = token("citizen", None, subject="cit-binh")
    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=stranger).status_code == 403
    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=token("officer", OTHER_WARD)).status_code == 403


def test_listing_dossiers(client, submit, officer, token, citizen):
    submit()
    submit(headers=officer, citizen_national_id="048185000777")
    assert len(client.get("/dossier/api/v1/dossiers", headers=citizen).json) == 1
    ward = client.get("/dossier/api/v1/dossiers?status=submitted", headers=officer)
    assert ward.status_code == 200 and len(ward.json) == 2
    assert client.get(f"/dossier/api/v1/dossiers?ward_id={OTHER_WARD}", headers=officer).status_code == 403
    assert client.get("/dossier/api/v1/dossiers", headers=token("monitor")).status_code == 403


def test_ward_stats(client, submit, officer, leader, token, clock, pay_at_counter):
    stats_url = f"/dossier/api/v1/wards/{WARD}/stats"
    empty = client.get(stats_url, headers=officer).json
    assert empty["submitted"] == 0 and empty["on_time_rate"] is None

    on_time = submit().json["dossier_id"]
    late = submit(headers=officer, citizen_national_id="048185000777").json["dossier_id"]
    waiting = submit().json["dossier_id"]
    submit()  # left untouched: overdue once its day has passed
    pay_at_counter(on_time), pay_at_counter(late)  # fees count for nothing in the numbers
    run(client, on_time, officer, "receive", "start_processing")
    run(client, on_time, leader, "approve")
    run(client, on_time, officer, "return")
    run(client, late, officer, "receive", "start_processing")
    run(client, late, leader, "approve")
    run(client, waiting, officer, "receive", "request_supplement")
    clock.on(date(2026, 3, 16))  # all four were due on 12/3
    run(client, late, officer, "return")

    stats = client.get(stats_url, headers=token("monitor")).json
    assert {k: stats[k] for k in ("submitted", "online", "counter", "returned", "returned_on_time", "overdue")} == {
        "submitted": 4, "online": 3, "counter": 1, "returned": 2, "returned_on_time": 1,
        "overdue": 1,  # the untouched one; the one awaiting a supplement has its clock stopped
    }
    assert stats["on_time_rate"] == 0.5
    [marriage] = stats["by_procedure"]
    assert marriage == {"procedure_code": "HT-XNHN", "submitted": 4, "online": 3, "counter": 1, "returned": 2,
                        "returned_on_time": 1, "overdue": 1, "on_time_rate": 0.5, "online_share": 0.75}
    assert client.get(stats_url, headers=token("admin")).status_code == 200
    assert client.get(stats_url, headers=token("officer", OTHER_WARD)).status_code == 403
    assert client.get(stats_url, headers=token("citizen")).status_code == 403


def test_overdue_dossiers_are_exported_per_ward_at_scrape_time(client, submit, clock):
    submit()
    clock.on(date(2026, 3, 13))
    text = client.get("/dossier/metrics").get_data(as_text=True)
    assert f'motcua_dossiers_overdue{{ward_id="{WARD}"}} 1.0' in text
    assert text.count("# TYPE motcua_dossiers_overdue gauge") == 1
    assert 'motcua_outbox_pending{service="dossier"} 1.0' in text
