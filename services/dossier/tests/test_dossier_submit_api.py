"""POST /dossiers against the SecantusDB server: online and counter submission, level-2
refusal, form validation, idempotent retries, chained procedures (liên thông)."""
from __future__ import annotations

import json
import re

import pytest
from prometheus_client import REGISTRY

from motcua_common import rpc
from motcua_common.outbox import OUTBOX
from motcua_dossier import domain
from motcua_dossier.citizen_directory import CitizenDirectory

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"

URL = "/dossier/api/v1/dossiers"


def submitted_count(ward, channel):
    return REGISTRY.get_sample_value("motcua_dossiers_submitted_total", {"ward_id": ward, "channel": channel}) or 0


def outbox_payloads(db):
    return [d["envelope"]["payload"] for d in db[OUTBOX].find().sort([("seq", 1), ("n", 1)])]


def test_a_citizen_submits_online(submit, dossier_db):
    before = submitted_count(WARD, "online")
    response = submit()
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "submitted" and body["channel"] == "online" and body["linked"] == []
    assert re.fullmatch(r"DNHC-260310-[2-9A-Z]{5}", body["receipt_code"])
    assert body["due_date"] == "2026-03-12"  # Tuesday + 2 working days
    stored = dossier_db.dossiers.find_one({"_id": body["dossier_id"]})
    assert stored["citizen_id"] == "cit-lan" and stored["phone_last4"] == "3456"
    assert stored["history"][0]["status"] == "submitted"
    # Neither the phone number nor the national id is kept or sent.
    everything = json.dumps([stored, list(dossier_db[OUTBOX].find())], default=str)
    assert "0905123456" not in everything and "048190000123" not in everything
    [event] = dossier_db[OUTBOX].find()
    assert event["routing_key"] == "DossierSubmitted" and event["exchange"] == "dossier.events"
    assert event["envelope"]["payload"] == {
        "dossier_id": body["dossier_id"], "receipt_code": body["receipt_code"], "procedure_code": "HT-XNHN",
        "ward_id": WARD, "channel": "online", "due_date": "2026-03-12", "citizen_id": "cit-lan", "chain_id": "",
    }
    assert submitted_count(WARD, "online") == before + 1


def test_a_citizen_token_with_the_phone_digits_needs_no_call_to_identity(submit, signing_key, citizens, dossier_db):
    citizens.unavailable = True  # identity (or the broker) is down
    token = signing_key.issue("cit-lan", "citizen", None, 600, phone_last4="3456")
    response = submit(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.json
    stored = dossier_db.dossiers.find_one({"_id": response.json["dossier_id"]})
    assert stored["citizen_id"] == "cit-lan" and stored["phone_last4"] == "3456"
    assert citizens.calls == []


def test_an_officer_submits_at_the_counter_for_a_registered_citizen(submit, officer, citizens, dossier_db):
    response = submit(headers=officer, citizen_national_id="048185000777")
    assert response.status_code == 201, response.json
    assert response.json["channel"] == "counter"
    stored = dossier_db.dossiers.find_one({"_id": response.json["dossier_id"]})
    assert stored["citizen_id"] == "cit-binh" and stored["submitted_by"] == "off-hc-1"
    assert ("find_citizen", "048185000777") in citizens.calls


def test_counter_submission_for_an_unregistered_citizen_says_to_register_first(submit, officer, dossier_db):
    response = submit(headers=officer, citizen_national_id="001099012345")
    assert response.status_code == 422
    assert response.json["code"] == "citizen_not_registered"
    assert "đăng ký tài khoản" in response.json["detail"]
    assert dossier_db.dossiers.count_documents({}) == 0


def test_officers_submit_only_for_their_own_ward(submit, token):
    other = token("officer", OTHER_WARD)
    response = submit(headers=other, citizen_national_id="048185000777")
    assert response.status_code == 403 and response.json["code"] == "forbidden"


def test_an_officer_must_name_the_citizen(submit, officer):
    response = submit(headers=officer)
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["citizen_national_id"]


def test_other_roles_and_anonymous_callers_cannot_submit(submit, token, client, forms):
    assert submit(headers=token("monitor")).status_code == 403
    assert submit(headers=token("kiosk", WARD)).status_code == 403
    anonymous = client.post(URL, json={"procedure_code": "HT-XNHN", "ward_id": WARD, "form": forms["marriage_status"]})
    assert anonymous.status_code == 401


def test_level_2_procedures_are_refused_online_and_accepted_at_the_counter(submit, officer):
    form = {"ten_giay_to": "Bằng tốt nghiệp", "so_trang": 1, "so_ban": 2}
    online = submit("CTH-BS", form)
    assert online.status_code == 422 and online.json["code"] == "counter_only"
    assert "Bộ phận một cửa" in online.json["detail"]
    counter = submit("CTH-BS", form, headers=officer, citizen_national_id="048190000123")
    assert counter.status_code == 201


def test_the_form_is_checked_against_the_procedure(submit):
    response = submit(form={"ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "04/05/1990",
                            "tinh_trang_hon_nhan": "Chưa kết hôn"})
    assert response.status_code == 422 and response.json["code"] == "validation_failed"
    errors = {e["field"]: e["message"] for e in response.json["errors"]}
    assert set(errors) == {"form.ngay_sinh", "form.muc_dich_su_dung"}
    assert "Mục đích sử dụng" in errors["form.muc_dich_su_dung"]


def test_form_text_with_hidden_characters_is_refused(submit, dossier_db):
    """A right-to-left override (or a control) in form text would make the signed result
    read otherwise than what was stored: refused with a stable code, nothing stored. A
    line break typed in a field is whitespace, not hidden."""
    filled = {"ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "1990-05-04", "tinh_trang_hon_nhan": "Chưa kết hôn",
              "muc_dich_su_dung": "Đăng ký kết hôn"}
    response = submit(form={**filled, "ho_ten": "Nguyễn Thị \u202eLan"})
    assert response.status_code == 422 and response.json["code"] == "hidden_characters"
    assert [e["field"] for e in response.json["errors"]] == ["form.ho_ten"]
    assert submit(form={**filled, "ho_ten": "Nguyễn Thị\x00Lan"}).json["code"] == "hidden_characters"
    assert dossier_db.dossiers.count_documents({}) == 0
    assert submit(form={**filled, "ho_ten": "Nguyễn Thị\nLan"}).status_code == 201


def test_bad_fields_are_named(submit, client, citizen):
    response = client.post(URL, json={"procedure_code": "NOPE", "ward_id": "Hải Châu", "form": [], "with_chain": "yes"},
                           headers=citizen)
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"procedure_code", "ward_id", "form", "with_chain"}


def test_idempotency_key_replays_the_first_answer(client, citizen, dossier_db, forms):
    body = {"procedure_code": "HT-XNHN", "ward_id": WARD, "form": forms["marriage_status"]}
    headers = {**citizen, "Idempotency-Key": "portal-7f3a"}
    first = client.post(URL, json=body, headers=headers)
    again = client.post(URL, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers.get("Idempotent-Replayed") == "true"
    assert dossier_db.dossiers.count_documents({}) == 1
    assert dossier_db[OUTBOX].count_documents({}) == 1
    other = client.post(URL, json={**body, "form": {**forms["marriage_status"], "muc_dich_su_dung": "Mua nhà"}},
                        headers=headers)
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"


def test_with_chain_submits_the_linked_procedures(submit, dossier_db, forms):
    response = submit("HT-KS", forms["chain"], with_chain=True)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["due_date"] == "2026-03-10"  # birth registration: within the day
    assert [l["procedure_code"] for l in body["linked"]] == ["CTR-TT", "BHYT-TE6"]
    # The chain is promised in 3 working days, shorter than residence's own 5.
    assert {l["due_date"] for l in body["linked"]} == {"2026-03-13"}
    codes = {body["receipt_code"], *(l["receipt_code"] for l in body["linked"])}
    assert len(codes) == 3
    chain = list(dossier_db.dossiers.find({"chain_id": body["chain_id"]}))
    assert len(chain) == 3 and body["chain_id"]
    residence = next(d for d in chain if d["procedure_code"] == "CTR-TT")
    assert set(residence["form"]) == {"ho_ten", "ngay_sinh", "dia_chi_thuong_tru", "ho_ten_chu_ho", "quan_he_voi_chu_ho"}
    assert residence["linked_from"] == body["dossier_id"]
    payloads = outbox_payloads(dossier_db)
    assert [p["procedure_code"] for p in payloads] == ["HT-KS", "CTR-TT", "BHYT-TE6"]
    assert {p["chain_id"] for p in payloads} == {body["chain_id"]}


def test_a_chain_needs_the_fields_of_every_procedure_in_it(submit, forms):
    alone = submit("HT-KS", forms["birth"])
    assert alone.status_code == 201 and alone.json["linked"] == []
    chained = submit("HT-KS", forms["birth"], with_chain=True)
    assert chained.status_code == 422
    assert "form.dia_chi_thuong_tru" in {e["field"] for e in chained.json["errors"]}


def test_identity_unavailable_answers_503_and_stores_nothing(submit, citizens, dossier_db):
    citizens.unavailable = True
    response = submit()
    assert response.status_code == 503 and response.json["code"] == "dependency_unavailable"
    assert dossier_db.dossiers.count_documents({}) == 0 and dossier_db[OUTBOX].count_documents({}) == 0


def test_a_receipt_code_collision_is_retried_with_a_fresh_code(submit, monkeypatch, dossier_db):
    taken = submit().json["receipt_code"]
    codes = iter([taken, "DNHC-260310-FRESH"])
    monkeypatch.setattr(domain, "new_receipt_code", lambda ward_id, day: next(codes))
    response = submit()
    assert response.status_code == 201 and response.json["receipt_code"] == "DNHC-260310-FRESH"
    assert dossier_db.dossiers.count_documents({}) == 2
    assert dossier_db[OUTBOX].count_documents({}) == 2  # the failed attempt left no event behind


def test_the_directory_asks_identity_by_rpc(settings, monkeypatch):
    calls = []
    monkeypatch.setattr(rpc, "call", lambda settings, service, method, *args, timeout: calls.append(
        (service, method, args)) or None)
    directory = CitizenDirectory(settings)
    assert directory.contact("cit-1") is None
    assert directory.find_by_national_id("048190000123") is None
    assert calls == [("identity", "citizen_contact", ("cit-1",)), ("identity", "find_citizen", ("048190000123",))]


def scripted_identity(monkeypatch, *answers):
    """rpc.call answering from a script: an exception is raised, anything else returned."""
    script, timeouts = list(answers), []

    def call(settings, service, method, *args, timeout):
        timeouts.append(timeout)
        answer = script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(rpc, "call", call)
    return timeouts


def test_a_slow_identity_is_asked_once_more_with_a_longer_wait(settings, monkeypatch):
    found = {"citizen_id": "cit-1", "phone_last4": "4567", "ward_id": WARD}
    timeouts = scripted_identity(monkeypatch, rpc.RpcTimedOut("identity.find_citizen did not answer in 5 s"), found)
    assert CitizenDirectory(settings, timeouts=(5.0, 10.0)).find_by_national_id("048190000123") == found
    assert timeouts == [5.0, 10.0]


def test_identity_silent_on_every_try_or_not_running_is_unavailable(settings, monkeypatch):
    timeouts = scripted_identity(monkeypatch, rpc.RpcTimedOut("late"), rpc.RpcTimedOut("late again"))
    with pytest.raises(rpc.RpcTimedOut):
        CitizenDirectory(settings, timeouts=(5.0, 10.0)).contact("cit-1")
    assert timeouts == [5.0, 10.0]
    timeouts = scripted_identity(monkeypatch, rpc.RpcUnavailable("identity is not running"))
    with pytest.raises(rpc.RpcUnavailable):
        CitizenDirectory(settings, timeouts=(5.0, 10.0)).contact("cit-1")
    assert timeouts == [5.0]   # nothing to wait for: no second try


def test_a_counter_submission_rides_out_one_slow_identity_answer(settings, verifier, wards, clock, dossier_db,
                                                                 payment_setup, officer, monkeypatch):
    """Through the API with the real CitizenDirectory: the first answer is late, the second
    comes; the officer gets 201, not 503."""
    from motcua_dossier.api import create_app

    found = {"citizen_id": "cit-slow", "phone_last4": "4567", "ward_id": WARD}
    scripted_identity(monkeypatch, rpc.RpcTimedOut("late"), found)
    app = create_app(settings, verifier=verifier, citizens=CitizenDirectory(settings, timeouts=(0.1, 0.2)),
                     wards=wards, clock=clock, payment_setup=payment_setup)
    response = app.test_client().post(URL, headers=officer, json={
        "procedure_code": "HT-XNHN", "ward_id": WARD, "form": {
            "ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "1990-05-04", "tinh_trang_hon_nhan": "Chưa kết hôn",
            "muc_dich_su_dung": "Đăng ký kết hôn"}, "citizen_national_id": "048190000123"})
    assert response.status_code == 201, response.json
    assert dossier_db.dossiers.find_one({"_id": response.json["dossier_id"]})["citizen_id"] == "cit-slow"
