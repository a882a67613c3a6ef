"""Per-step assignment to an officer, and the overdue announcement (DossierOverdue), by
the function the timer runs and by the real worker process."""
from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone

from hypothesis import given, strategies as st

from motcua_common.outbox import OUTBOX
from motcua_testing.fixtures import settings_env, wait_for
from motcua_dossier import domain
from motcua_dossier.dossiers import announce_overdue

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"


def assign(client, dossier_id, headers, **body):
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/assign", json=body, headers=headers)


# request_supplement and reject say what is missing or why (the citizen gets it by SMS).
NOTES = {"request_supplement": "Thiếu bản sao giấy khai sinh", "reject": "Không thuộc thẩm quyền của phường"}


def act(client, dossier_id, action, headers):
    body = {"action": action, "note": NOTES[action]} if action in NOTES else {"action": action}
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json=body, headers=headers)


def test_each_step_is_handed_to_an_officer(client, submit, officer, token):
    dossier_id = submit().json["dossier_id"]
    me = assign(client, dossier_id, officer)  # the receiving officer takes it
    assert me.status_code == 200 and me.json["assignee_id"] == "off-hc-1"
    assert act(client, dossier_id, "receive", officer).status_code == 200
    handed = assign(client, dossier_id, token("ward_admin", WARD, subject="lead-hc"), officer_id="off-hc-2",
                    note="Chuyển chuyên viên hộ tịch")
    assert handed.status_code == 200
    assert [(a["step"], a["officer_id"], a["by"]) for a in handed.json["assignments"]] == [
        ("submitted", "off-hc-1", "off-hc-1"), ("received", "off-hc-2", "lead-hc")]
    mine = client.get("/dossier/api/v1/dossiers?assignee=off-hc-2", headers=officer).json
    assert [d["dossier_id"] for d in mine] == [dossier_id]
    detail = client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=officer).json
    assert detail["assignee_id"] == "off-hc-2" and len(detail["assignments"]) == 2


def test_assignment_rules(client, submit, officer, token, citizen):
    dossier_id = submit().json["dossier_id"]
    assert assign(client, dossier_id, token("officer", OTHER_WARD)).status_code == 403
    assert assign(client, dossier_id, citizen).status_code == 403
    assert assign(client, dossier_id, token("monitor")).status_code == 403
    bad = assign(client, dossier_id, officer, officer_id="có dấu cách")
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "officer_id"
    assert act(client, dossier_id, "receive", officer).status_code == 200
    assert act(client, dossier_id, "reject", officer).status_code == 200
    finished = assign(client, dossier_id, officer)
    assert finished.status_code == 409 and finished.json["code"] == "not_assignable"


@given(st.sampled_from(list(domain.STATUS_LABELS)), st.dates(), st.dates())
def test_only_a_running_clock_past_its_due_date_needs_a_notice(status, due, today):
    needs = domain.needs_overdue_notice(status, due, today, None)
    assert needs == (status in domain.CLOCK_RUNNING_STATUSES and due < today)
    assert not domain.needs_overdue_notice(status, due, today, due.isoformat())


def overdue_events(db):
    return [d["envelope"] for d in db[OUTBOX].find({"routing_key": "DossierOverdue"})]


def test_an_overdue_dossier_is_announced_once_per_due_date(client, submit, officer, clock, dossier_db, deps):
    late = submit().json["dossier_id"]  # due Thursday 12/3
    waiting = submit().json["dossier_id"]
    assign(client, late, officer)
    for action in ("receive", "request_supplement"):
        assert act(client, waiting, action, officer).status_code == 200
    now = datetime(2026, 3, 13, 1, 0, tzinfo=timezone.utc)
    assert announce_overdue(deps, date(2026, 3, 12), now) == 0  # due today: not late yet
    assert announce_overdue(deps, date(2026, 3, 13), now) == 1
    assert announce_overdue(deps, date(2026, 3, 16), now) == 0  # already announced
    [event] = overdue_events(dossier_db)
    assert event["type"] == "DossierOverdue" and event["ward_id"] == WARD
    payload = event["payload"]
    assert payload["dossier_id"] == late and payload["due_date"] == "2026-03-12"
    assert payload["assignee_id"] == "off-hc-1" and payload["status"] == "submitted"
    assert "phone" not in str(payload) and "citizen" not in str(payload)


def test_a_new_due_date_after_a_supplement_can_be_announced_again(client, submit, officer, clock, dossier_db,
                                                                  deps):
    dossier_id = submit().json["dossier_id"]  # due Thursday 12/3
    assert act(client, dossier_id, "receive", officer).status_code == 200
    now = datetime(2026, 3, 13, 1, 0, tzinfo=timezone.utc)
    assert announce_overdue(deps, date(2026, 3, 13), now) == 1
    clock.on(date(2026, 3, 13))
    assert act(client, dossier_id, "request_supplement", officer).status_code == 200
    clock.on(date(2026, 3, 16))
    back = act(client, dossier_id, "receive", officer).json  # Monday waited: due 13/3
    assert back["due_date"] == "2026-03-13"
    assert announce_overdue(deps, date(2026, 3, 16), now) == 1
    assert [e["payload"]["due_date"] for e in overdue_events(dossier_db)] == ["2026-03-12", "2026-03-13"]


def test_the_worker_timer_announces_overdue_dossiers(broker_settings, service_db):
    """The real worker process: its timer runs at start and stores DossierOverdue."""
    from motcua_dossier import bootstrap

    bootstrap.prepare(broker_settings)
    db = service_db("dossier")
    db.dossiers.insert_one({
        "_id": "d-late", "receipt_code": "DNHC-200101-AAAAA", "receipt_key": "DNHC200101AAAAA",
        "procedure_code": "HT-XNHN", "ward_id": WARD, "channel": "online", "status": "processing",
        "due_date": "2020-01-06", "received_on": "2020-01-02", "chain_id": None, "citizen_id": "c1",
        "submitted_at": datetime(2020, 1, 2, tzinfo=timezone.utc), "history": [], "form": {},
    })
    proc = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "dossier"],
                            env=settings_env(broker_settings))
    try:
        event = wait_for(lambda: db[OUTBOX].find_one({"routing_key": "DossierOverdue"}), timeout=60,
                         message="DossierOverdue from the worker's timer")
        assert event["envelope"]["payload"]["dossier_id"] == "d-late"
        assert db.dossiers.find_one({"_id": "d-late"})["overdue_noticed_for"] == "2020-01-06"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
