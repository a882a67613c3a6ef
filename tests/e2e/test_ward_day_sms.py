"""Seed 000's story through the real platform: a citizen with only a phone registers by
SMS, gets a temporary password and how to change it, lets it expire unused, and still gets
in by changing it by SMS. notify sends every reply through the recording gateway; the
password is in no log line (notify's own tests check its store)."""
from __future__ import annotations

import re

import pytest
import requests

from motcua_testing.fixtures import wait_for

from .conftest import SMS_INBOUND_TOKEN
from .test_ward_day import fill_form

pytestmark = pytest.mark.e2e
PHONE = "+84977000111"


def inbound(base, text, message_id):
    return requests.post(f"{base}/identity/api/v1/sms/inbound", timeout=30,
                         headers={"X-Gateway-Token": SMS_INBOUND_TOKEN},
                         json={"from": "0977 000 111", "text": text, "id": message_id})


def replies_to(gateway, phone=PHONE):
    return [m["body"] for m in gateway.accepted() if m["body"]["to"] == phone]


def test_registration_by_sms_end_to_end(platform, gateway):
    base = platform["base"]
    assert inbound(base, "dk 019085003344 do thi hoa 3.4.1985", "sms-1").json()["outcome"] == "registered"
    reply = wait_for(lambda: replies_to(gateway), timeout=60, message="the temporary password SMS")[0]
    password = re.search(r"\b([a-z2-9]{8})\b", reply["text"]).group(1)
    assert "MK" in reply["text"] and "72" in reply["text"]

    session = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                            json={"username": "019085003344", "password": password}).json()
    assert session["must_change_password"] is True
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    refused = requests.get(f"{base}/dossier/api/v1/dossiers", headers=headers, timeout=30)
    assert refused.status_code == 403 and refused.json()["code"] == "password_change_required"

    assert inbound(base, f"MK {password} hoa-song-cong-85", "sms-2").json()["outcome"] == "changed"
    wait_for(lambda: len(replies_to(gateway)) >= 2, timeout=60, message="the password-changed SMS")
    ok = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                       json={"username": "0977000111", "password": "hoa-song-cong-85"}).json()
    assert ok["must_change_password"] is False

    # the resent gateway message (same id) changes nothing and texts nothing more
    inbound(base, f"MK {password} hoa-song-cong-85", "sms-2")
    # a malformed command is answered, never ignored
    assert inbound(base, "DK thieu thong tin", "sms-3").json()["outcome"] == "help"
    wait_for(lambda: len(replies_to(gateway)) >= 3, timeout=60, message="the help reply")

    # TT: the status of a dossier, answered to the phone registered on it
    citizen = {"Authorization": f"Bearer {ok['access_token']}"}
    procedure = next(p for p in requests.get(f"{base}/dossier/api/v1/procedures", timeout=30).json() if p["level"] >= 3)
    dossier = requests.post(f"{base}/dossier/api/v1/dossiers", headers=citizen, timeout=30, json={
        "procedure_code": procedure["code"], "ward_id": "dn-hai-chau", "form": fill_form(procedure)}).json()
    code = dossier["receipt_code"]
    assert inbound(base, f"tt {code.lower()}", "sms-4").json()["outcome"] == "answered"
    status = wait_for(lambda: [r for r in replies_to(gateway) if code in r["text"] and "Ho so" in r["text"]], timeout=60,
                      message="the status reply")
    assert "da nop" in status[0]["text"]
    other = requests.post(f"{base}/identity/api/v1/sms/inbound", timeout=30, headers={"X-Gateway-Token": SMS_INBOUND_TOKEN},
                          json={"from": "0905 000 999", "text": f"TT {code}", "id": "sms-5"})
    assert other.json()["outcome"] == "refused"

    log_text = platform["log"].read_text()
    assert password not in log_text and "019085003344" not in log_text and "977000111" not in log_text
