"""A phone is enough (issue 19, CONTRACT "A phone is enough"), through the real platform:
a citizen who has only a phone registers by SMS (DK), an officer files a dossier for them at
the counter, the ward's leader approves it, the result-ready SMS reaches the phone, the
citizen answers "1", and the rating shows in the ward's satisfaction statistics — without
the citizen ever touching the web."""
from __future__ import annotations

import re

import pytest
import requests

from motcua_common import demo
from motcua_testing.fixtures import wait_for
from motcua_testing.forms import fill_form

from .conftest import SMS_INBOUND_TOKEN

pytestmark = pytest.mark.e2e
WARD = "dn-hai-chau"
PHONE = "+84977000222"
NATIONAL_ID = "048088007788"     # Đà Nẵng, a man born in 1988


def inbound(base, text, message_id, sender="0977 000 222"):
    answer = requests.post(f"{base}/identity/api/v1/sms/inbound", timeout=30,
                           headers={"X-Gateway-Token": SMS_INBOUND_TOKEN},
                           json={"from": sender, "text": text, "id": message_id})
    assert answer.status_code == 200, answer.text
    return answer.json()


def texts_to(gateway, phone=PHONE) -> list[str]:
    return [m["body"]["text"] for m in gateway.accepted() if m["body"]["to"] == phone]


def session(base, username, password) -> dict:
    answer = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                           json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_a_citizen_with_only_a_phone_from_dk_to_a_rated_result(platform, gateway):
    base = platform["base"]

    # DK from the phone: a temporary password comes back, naming the ward; a resend of the
    # same message by the gateway changes nothing and texts nothing more.
    assert inbound(base, "dk 048088007788 nguyen van binh 12/10/1988", "phone-1")["outcome"] == "registered"
    reply = wait_for(lambda: texts_to(gateway), timeout=60, message="the temporary password SMS")[0]
    assert re.search(r"\b[a-z2-9]{8}\b", reply) and "Hai Chau" in reply
    assert inbound(base, "dk 048088007788 nguyen van binh 12/10/1988", "phone-1")["outcome"] == "registered"

    # At the counter: the officer files a dossier for the citizen (the CCCD on the card).
    officer = session(base, "canbo.haichau", demo.DEMO_STAFF_PASSWORD)
    leader = session(base, "lanhdao.haichau", demo.DEMO_STAFF_PASSWORD)
    ratings_before = requests.get(f"{base}/rating/api/v1/wards/{WARD}/stats", headers=officer, timeout=30).json()
    procedures = requests.get(f"{base}/dossier/api/v1/procedures", timeout=30).json()
    procedure = next(p for p in procedures if not p["fee"])
    filed = requests.post(f"{base}/dossier/api/v1/dossiers", headers=officer, timeout=30, json={
        "procedure_code": procedure["code"], "ward_id": WARD, "form": fill_form(procedure),
        "citizen_national_id": NATIONAL_ID})
    assert filed.status_code == 201, filed.text
    dossier = filed.json()
    code = dossier["receipt_code"]
    assert dossier["channel"] == "counter"

    # Received and processed by the officer, approved by the leader.
    actions = f"{base}/dossier/api/v1/dossiers/{dossier['dossier_id']}/actions"
    for action, who in (("receive", officer), ("start_processing", officer), ("approve", leader)):
        moved = requests.post(actions, headers=who, json={"action": action}, timeout=30)
        assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "result_ready"

    # The result-ready SMS reaches the citizen's phone.
    wait_for(lambda: [t for t in texts_to(gateway) if code in t and "kết quả" in t.lower() or
                      code in t and "ket qua" in t.lower()], timeout=90, message="the result-ready SMS")

    # The citizen answers "1" (rating learns of the result from the same event: asked
    # again until it has; a "nothing to rate" answer is not taken for a resend).
    attempts = iter(range(100))

    def answer_one():
        outcome = inbound(base, "1", f"phone-rate-{next(attempts)}")["outcome"]
        return outcome if outcome != "refused" else None

    assert wait_for(answer_one, timeout=40, interval=5, message="the answer '1' to rate the dossier") == "rated"
    thanks = wait_for(lambda: [t for t in texts_to(gateway) if "Cam on" in t and code in t], timeout=60,
                      message="the thank-you SMS")[0]
    assert thanks.endswith("Rat hai long.")

    # Once: a second answer is told it was already rated.
    assert inbound(base, "DG 2", "phone-rate-again")["outcome"] == "already_rated"
    wait_for(lambda: [t for t in texts_to(gateway) if "da duoc danh gia" in t], timeout=60,
             message="the already-rated SMS")

    # The rating shows in the ward's statistics.
    after = requests.get(f"{base}/rating/api/v1/wards/{WARD}/stats", headers=officer, timeout=30).json()
    assert after["very_satisfied"] == ratings_before["very_satisfied"] + 1
    assert after["total"] == ratings_before["total"] + 1

    # TT from another phone gets the answer an unknown code gets.
    other = inbound(base, f"TT {code}", "other-1", sender="0905 000 222")
    assert other == {"command": "TT", "outcome": "refused"}
