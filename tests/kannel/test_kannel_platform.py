"""Seed 000 through a real Kannel: a citizen texts DK to 8188 from a phone (fakesmsc),
bearerbox and smsbox hand it to identity's get-url, the temporary password goes back out
through notify and Kannel; the citizen changes it by SMS, submits a dossier online and the
"submitted" SMS reaches the SMSC in UCS-2, and Kannel's delivery report marks it delivered.
Then the telco link and bearerbox go down while messages are due: they wait, are retried,
and each reaches the phone exactly once when Kannel is back."""
from __future__ import annotations

import re
import time

import pytest
import requests

from motcua_common import demo
from motcua_testing.fixtures import wait_for
from motcua_testing.forms import fill_form

from .conftest import SMS_INBOUND_TOKEN

pytestmark = pytest.mark.e2e
PHONE, NATIONAL_ID = "+84977086419", "019085003355"
WARD = "dn-hai-chau"


def login(base, username, password) -> dict:
    response = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                             json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(session: dict) -> dict:
    return {"Authorization": f"Bearer {session['access_token']}"}


def notifications(base, officer, template) -> list[dict]:
    found = requests.get(f"{base}/notify/api/v1/notifications", headers=officer, timeout=30,
                         params={"ward_id": WARD, "limit": 500}).json()
    # `to` is known once sent; a citizen's message still waiting shows none
    return [n for n in found if n["template"] == template and n["to"] in ("+84******419", None)]


def submit(base, citizen) -> dict:
    procedure = next(p for p in requests.get(f"{base}/dossier/api/v1/procedures", timeout=30).json()
                     if p["level"] >= 3)
    response = requests.post(f"{base}/dossier/api/v1/dossiers", headers=citizen, timeout=30, json={
        "procedure_code": procedure["code"], "ward_id": WARD, "form": fill_form(procedure)})
    assert response.status_code == 201, response.text
    return response.json()


def texts_with(kannel, part: str) -> list:
    return [m for m in kannel.received_by(PHONE) if part in m.text]


@pytest.fixture(scope="module")
def citizen(kannel_platform):
    """Registered by SMS through Kannel, password changed by SMS; signed in."""
    base, kannel = kannel_platform["base"], kannel_platform["kannel"]
    kannel.say("0977086419", f"DK {NATIONAL_ID} tran thi mai 3.4.1985")
    reply = wait_for(lambda: texts_with(kannel, "MK"), timeout=60, message="the temporary password at the SMSC")[0]
    assert reply.sender == "8188" and reply.coding == "ucs2"     # Vietnamese with diacritics
    assert "Mật khẩu tạm thời" in reply.text and "72 giờ" in reply.text
    password = re.search(r"Mật khẩu tạm thời: (\S+),", reply.text).group(1)
    assert login(base, NATIONAL_ID, password)["must_change_password"] is True

    kannel.say("0977086419", f"MK {password} mai-song-cong-85")
    wait_for(lambda: len(kannel.received_by(PHONE)) >= 2, timeout=60, message="the password-changed SMS")
    session = login(base, NATIONAL_ID, "mai-song-cong-85")
    assert session["must_change_password"] is False
    log_text = kannel_platform["log"].read_text()
    assert password not in log_text and NATIONAL_ID not in log_text and "977086419" not in log_text
    return {"headers": bearer(session), "password": password}


@pytest.fixture(scope="module")
def officer(kannel_platform):
    return bearer(login(kannel_platform["base"], "canbo.haichau", demo.DEMO_STAFF_PASSWORD))


def test_registration_by_sms_through_kannel_and_its_delivery_reports(kannel_platform, citizen, officer):
    base = kannel_platform["base"]
    # Kannel's fake SMSC reports each message delivered to the phone (dlr type 1).
    settled = wait_for(lambda: [n for n in notifications(base, officer, "temporary_password")
                                if n["status"] == "delivered"], timeout=30, message="the password SMS delivered")
    assert settled[0]["attempts"] == 1


def test_a_submitted_dossier_is_texted_in_ucs2_and_reported_delivered(kannel_platform, citizen, officer):
    base, kannel = kannel_platform["base"], kannel_platform["kannel"]
    dossier = submit(base, citizen["headers"])
    code = dossier["receipt_code"]
    sms = wait_for(lambda: texts_with(kannel, code), timeout=60, message="the submitted SMS at the SMSC")
    assert len(sms) == 1
    message = sms[0]
    assert message.coding == "ucs2" and message.raw == message.text.encode("utf-16-be")
    assert message.text.startswith(f"Hồ sơ {code} (thủ tục ") and "đã nộp thành công, hẹn trả" in message.text
    assert message.text.endswith(f"Tra cứu: nhắn TT {code}")
    assert message.parts >= 2     # longer than 70 UCS-2 characters: concatenated parts, joined again
    wait_for(lambda: [n for n in notifications(base, officer, "dossier_submitted") if n["status"] == "delivered"],
             timeout=30, message="the submitted SMS marked delivered")


def test_kannel_inbound_needs_the_secret(kannel_platform):
    base = kannel_platform["base"]
    inbound = f"{base}/identity/api/v1/sms/kannel"
    text = {"data": b"TT HS-1", "headers": {"X-Kannel-From": "0977086419", "Content-Type": "text/plain; charset=UTF-8"}}
    for service in ("default", "wrong"):
        answer = requests.post(inbound, params={"id": "x-1"}, timeout=30, data=text["data"],
                               headers={**text["headers"], "X-Kannel-Service": service})
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_gateway_token"
    # The secret in a URL is refused, and so is the old get-url form.
    assert requests.post(inbound, params={"id": "x-1", "token": SMS_INBOUND_TOKEN}, timeout=30,
                         **text).status_code == 401
    assert requests.get(inbound, params={"token": SMS_INBOUND_TOKEN, "from": "0977086419", "text": "TT HS-1"},
                        timeout=30).status_code == 410
    bad_phone = requests.post(inbound, params={"id": "x-1"}, timeout=30, data=b"TT HS-1",
                              headers={"X-Kannel-From": "1900", "X-Kannel-Service": SMS_INBOUND_TOKEN})
    assert bad_phone.status_code == 422 and bad_phone.json()["errors"][0]["field"] == "from"
    forged = requests.get(f"{base}/notify/api/v1/kannel/dlr", timeout=30,
                          params={"id": "any", "exp": "9999999999", "sig": "0" * 32, "type": "1"})
    assert forged.status_code == 401


def test_kannels_logs_keep_no_message_text_and_no_secret(kannel_platform, citizen):
    """After the DK and MK turns (the citizen fixture: a temporary password out, then
    `MK <temporary> <new>` in), nothing Kannel wrote holds a password, a message's text,
    the inbound token or a phone number; its access log still has a line per message."""
    kannel = kannel_platform["kannel"]
    logs = kannel.logs()
    assert "Receive SMS [SMSC:fake]" in logs and "Sent SMS [SMSC:fake]" in logs
    for secret in (citizen["password"], "mai-song-cong-85", SMS_INBOUND_TOKEN, kannel.password, NATIONAL_ID,
                   "977086419", "MK ", "DK ", "[msg:"):
        assert secret not in logs, secret
    # UCS-2 texts reach the access log as hex by default: none of that either.
    assert citizen["password"].encode("utf-16-be").hex().upper() not in logs.upper()


def test_a_stopped_bearerbox_makes_sends_wait_and_nothing_is_lost_or_doubled(kannel_platform, citizen, officer):
    base, kannel = kannel_platform["base"], kannel_platform["kannel"]
    # The telco link drops: Kannel still accepts, and keeps the message in its store.
    kannel.disconnect_smsc()
    queued = submit(base, citizen["headers"])["receipt_code"]
    wait_for(lambda: [n for n in notifications(base, officer, "dossier_submitted")
                      if n["status"] == "sent"], timeout=60, message="Kannel accepting while the SMSC is away")

    # bearerbox stops (smsbox with it): notify cannot hand the next message over and retries.
    kannel.stop_bearerbox()
    waiting = submit(base, citizen["headers"])["receipt_code"]
    retried = wait_for(lambda: [n for n in notifications(base, officer, "dossier_submitted")
                                if n["status"] == "pending" and n["attempts"] >= 2], timeout=60,
                       message="the message retried while bearerbox is down")
    assert len(retried) == 1

    kannel.start()
    for code in (queued, waiting):
        wait_for(lambda: texts_with(kannel, code), timeout=60, message=f"{code} at the SMSC after the restart")
    wait_for(lambda: len([n for n in notifications(base, officer, "dossier_submitted")
                          if n["status"] == "delivered"]) == 3, timeout=30, message="all three delivered")
    time.sleep(3)   # a doubled message would arrive by now: every retry is 1-2 s apart
    for code in (queued, waiting):
        assert len(texts_with(kannel, code)) == 1, code
    assert len([n for n in notifications(base, officer, "dossier_submitted")]) == 3
