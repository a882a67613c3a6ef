"""The officer's desk rules of the contract (v1 additions): approve is the ward leader's
(403 leader_only for officers and ward admins), request_supplement and reject need a note
the citizen reads (422 otherwise, nothing written), a step is handed only to an active
officer of the dossier's ward (422 officer_not_in_ward; 503 when identity cannot say),
and what notify asks before it texts the citizen (for_sms)."""
from __future__ import annotations

import pytest

from motcua_common.outbox import OUTBOX
from motcua_dossier import dossiers

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"


def act(client, dossier_id, headers, **body):
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json=body, headers=headers)


def assign(client, dossier_id, headers, **body):
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/assign", json=body, headers=headers)


def outbox_of(db, dossier_id):
    return [d["envelope"] for d in db[OUTBOX].find() if d["envelope"]["payload"].get("dossier_id") == dossier_id]


@pytest.fixture
def processing(client, submit, officer, pay_at_counter):
    """A dossier paid, received and in processing: ready to be approved."""
    dossier_id = submit().json["dossier_id"]
    pay_at_counter(dossier_id)
    for action in ("receive", "start_processing"):
        assert act(client, dossier_id, officer, action=action).status_code == 200
    return dossier_id


# ---------------------------------------------------------------- approve: the leader's
@pytest.mark.parametrize("role", ["officer", "ward_admin"])
def test_an_officer_or_ward_admin_may_not_approve(client, processing, token, dossier_db, role):
    refused = act(client, processing, token(role, WARD), action="approve")
    assert refused.status_code == 403 and refused.json["code"] == "leader_only"
    assert "lãnh đạo phường" in refused.json["detail"]
    assert dossier_db.dossiers.find_one({"_id": processing})["status"] == "processing"
    assert [e["type"] for e in outbox_of(dossier_db, processing)].count("DossierResultReady") == 0


def test_another_wards_leader_may_not_approve(client, processing, token):
    assert act(client, processing, token("leader", OTHER_WARD), action="approve").status_code == 403


@pytest.mark.parametrize("role", ["leader", "admin"])
def test_the_wards_leader_or_an_admin_approves_and_signs(client, processing, token, dossier_db, role):
    approver = token(role, WARD if role == "leader" else None, subject=f"{role}-1")
    approved = act(client, processing, approver, action="approve")
    assert approved.status_code == 200 and approved.json["status"] == "result_ready"
    stored = dossier_db.dossiers.find_one({"_id": processing})
    assert stored["history"][-1]["actor_id"] == f"{role}-1" and stored.get("result")


def test_the_leader_works_the_wards_dossiers_too(client, submit, leader):
    dossier_id = submit().json["dossier_id"]
    assert act(client, dossier_id, leader, action="receive").status_code == 200


# ---------------------------------------------------------------- the note the citizen reads
@pytest.mark.parametrize("action", ["request_supplement", "reject"])
@pytest.mark.parametrize("note", [None, "", "   ", "x" * 501, "Thiếu\u202e giấy tờ", "Thiếu\ngiấy tờ", "Thiếu\x00", 42])
def test_a_supplement_request_or_rejection_without_a_proper_note_is_422_and_writes_nothing(
        client, submit, officer, dossier_db, action, note):
    dossier_id = submit().json["dossier_id"]
    assert act(client, dossier_id, officer, action="receive").status_code == 200
    before = len(outbox_of(dossier_db, dossier_id))
    body = {"action": action} if note is None else {"action": action, "note": note}
    refused = act(client, dossier_id, officer, **body)
    assert refused.status_code == 422 and refused.json["code"] == "validation_failed"
    assert [e["field"] for e in refused.json["errors"]] == ["note"]
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert stored["status"] == "received" and len(stored["history"]) == 2
    assert len(outbox_of(dossier_db, dossier_id)) == before


def test_the_note_is_kept_on_the_timeline_and_given_to_notify_not_put_in_the_event(client, submit, officer, deps,
                                                                                   dossier_db):
    dossier_id = submit("HT-KS", form={"ho_ten": "Nguyễn Minh An", "ngay_sinh": "2026-03-01", "gioi_tinh": "Nam",
                                       "noi_sinh": "Bệnh viện Đà Nẵng", "ho_ten_me": "Nguyễn Thị Lan",
                                       "quan_he_nguoi_di_dang_ky": "Mẹ"}).json["dossier_id"]
    assert act(client, dossier_id, officer, action="receive").status_code == 200
    note = "  Thiếu bản sao giấy chứng sinh  "
    asked = act(client, dossier_id, officer, action="request_supplement", note=note)
    assert asked.status_code == 200 and asked.json["status"] == "supplement_requested"
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    entry = stored["history"][-1]
    assert entry["note"] == "Thiếu bản sao giấy chứng sinh"
    changed = [e for e in outbox_of(dossier_db, dossier_id) if e["type"] == "DossierStatusChanged"][-1]
    assert entry["event_id"] == changed["event_id"] and changed["payload"]["to_status"] == "supplement_requested"
    assert "giấy chứng sinh" not in str(changed)   # free text stays out of events
    detail = client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=officer).json
    assert detail["history"][-1]["note"] == "Thiếu bản sao giấy chứng sinh"

    answer = dossiers.for_sms(deps, dossier_id, changed["event_id"])
    assert answer == {"procedure": "Đăng ký khai sinh", "procedure_code": "HT-KS", "level": 4, "e_result": True,
                      "status": "supplement_requested", "note": "Thiếu bản sao giấy chứng sinh"}
    assert dossiers.for_sms(deps, dossier_id, "another-event")["note"] is None
    assert dossiers.for_sms(deps, "no-such-dossier", changed["event_id"]) is None


def test_a_long_procedure_name_is_shortened_for_the_sms(deps, dossier_db, client, submit, officer):
    dossier_id = submit().json["dossier_id"]
    dossier_db.dossiers.update_one({"_id": dossier_id}, {"$set": {
        "procedure_name": "Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi"}})
    assert dossiers.for_sms(deps, dossier_id, None)["procedure"] == "Cấp thẻ bảo hiểm y tế cho trẻ…"


# ---------------------------------------------------------------- assignment: officers of the ward only
def test_a_step_is_handed_only_to_an_active_officer_of_the_ward(client, submit, officer, token, officers,
                                                                dossier_db):
    dossier_id = submit().json["dossier_id"]
    ward_admin = token("ward_admin", WARD, subject="lead-hc")
    for someone in ("off-lc-1", "off-nobody", "cit-lan"):
        refused = assign(client, dossier_id, ward_admin, officer_id=someone)
        assert refused.status_code == 422 and refused.json["code"] == "officer_not_in_ward"
        assert refused.json["errors"][0]["field"] == "officer_id"
    assert (("off-lc-1", WARD)) in officers.calls
    assert dossier_db.dossiers.find_one({"_id": dossier_id}).get("assignments") is None
    handed = assign(client, dossier_id, ward_admin, officer_id="off-hc-2")
    assert handed.status_code == 200 and handed.json["assignee_id"] == "off-hc-2"


def test_taking_a_step_oneself_needs_no_question_and_identity_down_is_503(client, submit, officer, token, officers):
    dossier_id = submit().json["dossier_id"]
    officers.unavailable = True
    mine = assign(client, dossier_id, officer)
    assert mine.status_code == 200 and mine.json["assignee_id"] == "off-hc-1"
    down = assign(client, dossier_id, officer, officer_id="off-hc-2")
    assert down.status_code == 503 and down.json["code"] == "dependency_unavailable"
    # The platform administrator is no officer of the ward: asked like anyone else.
    officers.unavailable = False
    admin = assign(client, dossier_id, token("admin", subject="admin-1"))
    assert admin.status_code == 422 and admin.json["code"] == "officer_not_in_ward"
