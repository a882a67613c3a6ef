"""Web registration proves the phone (issue 19): POST /citizens from the web answers 201 as
the contract says, with the account inactive (`status: pending_phone`, `phone_verified:
false`) and a 6-digit code texted to the phone; POST /citizens/{id}/phone-verification
{code} activates it. The code lasts 10 minutes and takes 5 tries; codes are limited per
phone and per client address; sign-in before that is 403 phone_not_verified. The counter
and DK are proof by themselves. Identifiers are ASCII digits only, everywhere."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from motcua_common import demo
from motcua_common.clock import FixedClock
from motcua_identity import bootstrap
from motcua_identity.api import create_app

WARD = "dn-hai-chau"
PASSWORD = "hoa-sen-2026"


def body(**overrides):
    answer = {"national_id": "048090001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1990-05-01",
              "phone": "0905 123 456", "ward_id": WARD, "password": PASSWORD}
    answer.update(overrides)
    return answer


@pytest.fixture
def world(settings):
    bootstrap.prepare(settings, demo=True)
    sent, clock = [], FixedClock(datetime.now(timezone.utc).replace(microsecond=0))
    app = create_app(settings, clock=clock, send_reply=lambda *args: sent.append(args))
    return app.test_client(), sent, clock


def codes(sent, phone="+84905123456"):
    return [v["code"] for to, template, v, _w, _k in sent if to == phone and template == "phone_code"]


def register(client, address="198.51.100.7", **overrides):
    return client.post("/identity/api/v1/citizens", json=body(**overrides), environ_base={"REMOTE_ADDR": address})


def verify(client, citizen_id, code):
    return client.post(f"/identity/api/v1/citizens/{citizen_id}/phone-verification", json={"code": code})


def officer_headers(client) -> dict:
    session = client.post("/identity/api/v1/sessions", json={"username": "canbo.haichau",
                                                              "password": demo.DEMO_STAFF_PASSWORD}).get_json()
    return {"Authorization": f"Bearer {session['access_token']}"}


def login(client, username="048090001234", password=PASSWORD):
    return client.post("/identity/api/v1/sessions", json={"username": username, "password": password})


def test_the_code_sent_to_the_phone_activates_the_account(world, service_db):
    client, sent, _ = world
    created = register(client)
    assert created.status_code == 201
    answer = created.get_json()
    assert answer["status"] == "pending_phone" and answer["phone_verified"] is False
    assert answer["phone_code_sent"] is True and answer["phone_code_expires_in"] == 600
    [code] = codes(sent)
    assert len(code) == 6 and code.isascii() and code.isdigit()
    to, template, variables, ward_id, _key = sent[-1]
    assert (template, ward_id, variables["minutes"]) == ("phone_code", WARD, 10)
    stored = service_db("identity").phone_codes.find_one({"_id": answer["citizen_id"]})
    assert code not in str(stored)   # kept as a digest only

    refused = login(client)
    assert refused.status_code == 403 and refused.get_json()["code"] == "phone_not_verified"
    assert "mã xác nhận" in refused.get_json()["detail"]
    assert login(client, password="sai-mat-khau").status_code == 401   # the wrong password learns nothing more

    done = verify(client, answer["citizen_id"], code)
    assert done.status_code == 200 and done.get_json() == {"citizen_id": answer["citizen_id"], "status": "active",
                                                          "phone_verified": True}
    assert login(client).status_code == 200
    again = verify(client, answer["citizen_id"], code)
    assert again.status_code == 409 and again.get_json()["code"] == "phone_already_verified"


def test_five_tries_then_a_new_code(world):
    client, sent, _ = world
    citizen_id = register(client).get_json()["citizen_id"]
    [code] = codes(sent)
    wrong = "%06d" % ((int(code) + 1) % 10 ** 6)
    answers = [verify(client, citizen_id, wrong) for _ in range(5)]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 429]
    assert "còn 1 lần thử" in answers[3].get_json()["errors"][0]["message"]
    assert answers[4].get_json()["code"] == "too_many_tries"
    # The right code no longer works either: ask for a new one.
    assert verify(client, citizen_id, code).get_json()["code"] == "code_expired"
    resent = client.post(f"/identity/api/v1/citizens/{citizen_id}/phone-verification/code")
    assert resent.status_code == 202 and len(codes(sent)) == 2
    assert verify(client, citizen_id, codes(sent)[-1]).status_code == 200


def test_a_code_expires_after_ten_minutes(world):
    client, sent, clock = world
    citizen_id = register(client).get_json()["citizen_id"]
    clock.advance(minutes=10, seconds=1)
    expired = verify(client, citizen_id, codes(sent)[-1])
    assert expired.status_code == 410 and expired.get_json()["code"] == "code_expired"


def test_codes_are_limited_per_phone_and_per_address(world):
    client, sent, _ = world
    citizen_id = register(client).get_json()["citizen_id"]
    statuses = [client.post(f"/identity/api/v1/citizens/{citizen_id}/phone-verification/code").status_code
                for _ in range(5)]
    assert statuses == [202, 202, 202, 202, 429]      # 5 codes an hour to one phone (the first at registration)
    assert len(codes(sent)) == 5
    # Another phone from the same address still gets its code ...
    other = register(client, national_id="048090004321", phone="0905 000 111")
    assert other.get_json()["phone_code_sent"] is True


def test_codes_per_address(settings):
    bootstrap.prepare(settings, demo=True)
    sent = []
    settings = replace(settings, registrations_per_client_hour=100)
    client = create_app(settings, send_reply=lambda *args: sent.append(args)).test_client()
    answers = [register(client, address="192.0.2.1", national_id=f"04809000{n:04d}", phone=f"0905 123 4{n:02d}")
               .get_json()["phone_code_sent"] for n in range(21)]
    assert answers == [True] * 20 + [False]           # 20 an hour from one address
    other = register(client, address="192.0.2.2", national_id="048090009999", phone="0905 999 999")
    assert other.get_json()["phone_code_sent"] is True


def test_the_counter_and_sms_registrations_are_proof_by_themselves(world):
    client, sent, _ = world
    counter = client.post("/identity/api/v1/citizens", json=body(), headers=officer_headers(client))
    assert counter.status_code == 201 and counter.get_json()["status"] == "active"
    assert counter.get_json()["phone_verified"] is True and codes(sent) == []
    assert login(client).status_code == 200


def test_phone_proof_can_be_switched_off(settings):
    bootstrap.prepare(settings, demo=True)
    client = create_app(settings, send_reply=lambda *args: None, web_phone_proof=False).test_client()
    created = client.post("/identity/api/v1/citizens", json=body())
    assert created.status_code == 201 and created.get_json()["status"] == "active"
    assert login(client).status_code == 200


@pytest.mark.parametrize("field,value", [
    ("national_id", "０４８０９０００１２３４"),          # fullwidth
    ("national_id", "٠٤٨٠٩٠٠٠١٢٣٤"),                  # Arabic-Indic
    ("phone", "０９０５１２３４５６"),
    ("phone", "۰۹۰۵۱۲۳۴۵۶"),                           # Extended Arabic-Indic
])
def test_identifiers_in_other_digits_are_refused_clearly(world, field, value):
    client, sent, _ = world
    refused = register(client, **{field: value})
    assert refused.status_code == 422
    [error] = [e for e in refused.get_json()["errors"] if e["field"] == field]
    assert "0–9" in error["message"] and sent == []


def test_other_digits_are_refused_in_codes_sign_in_and_corrections(world):
    client, sent, _ = world
    citizen_id = register(client).get_json()["citizen_id"]
    code = codes(sent)[-1]
    wide = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    refused = verify(client, citizen_id, wide)
    assert refused.status_code == 422 and "0–9" in refused.get_json()["errors"][0]["message"]
    assert verify(client, citizen_id, code).status_code == 200    # the try above was not counted against it
    sign_in = login(client, username="０４８０９０００１２３４")
    assert sign_in.status_code == 422 and sign_in.get_json()["errors"][0]["field"] == "username"
    officer = officer_headers(client)
    patch = client.patch(f"/identity/api/v1/citizens/{citizen_id}", json={"phone": "０９０５１２３４５６"}, headers=officer)
    assert patch.status_code == 422 and "0–9" in patch.get_json()["errors"][0]["message"]
    put = client.put("/identity/api/v1/citizens/by-national-id", json={"national_id": "０４８０９０００１２３４",
                                                                         "phone": "0905000111"}, headers=officer)
    assert put.status_code == 422 and "0–9" in put.get_json()["errors"][0]["message"]
