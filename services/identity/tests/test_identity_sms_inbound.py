"""The short code (seed 000): DK / MK / TT through POST /sms/inbound, with notify and
dossier replaced by recorders (their RPC is tested in their own services), a movable clock."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from motcua_common.clock import FixedClock
from motcua_identity import bootstrap
from motcua_identity.api import create_app

TOKEN = "gateway-secret"
PHONE = "+84935111222"


@pytest.fixture
def world(settings):
    settings = replace(settings, sms_inbound_token=TOKEN, sms_registration_ward="dn-hai-chau")
    bootstrap.prepare(settings, demo=True)
    # Now, not a fixed date: rate-limit counters expire by a TTL index relative to it.
    replies, clock = [], FixedClock(datetime.now(timezone.utc).replace(microsecond=0))

    def send_reply(to, template, variables, ward_id, key):
        replies.append({"to": to, "template": template, "variables": variables, "ward_id": ward_id, "key": key})
        return {"notification_id": f"n{len(replies)}"}

    def dossier_status(receipt_code, last4):
        if receipt_code == "HC-261121-ABCDE" and last4 == PHONE[-4:]:
            return {"status": "processing", "due_date": "2026-11-26", "ward_id": "dn-hai-chau"}
        return None

    app = create_app(settings, clock=clock, send_reply=send_reply, dossier_status=dossier_status)
    return app.test_client(), replies, clock


def sms(client, text, sender=PHONE, token=TOKEN, **extra):
    return client.post("/identity/api/v1/sms/inbound", json={"from": sender, "text": text, **extra},
                       headers={"X-Gateway-Token": token})


def login(client, username, password):
    return client.post("/identity/api/v1/sessions", json={"username": username, "password": password})


def test_sms_registration_story_of_seed_000(world, service_db, caplog):
    client, replies, clock = world
    caplog.set_level(logging.DEBUG)
    response = sms(client, "dk 048090001234 nguyen van an 1-5-1990", id="m1")
    assert response.status_code == 200 and response.get_json() == {"command": "DK", "outcome": "registered"}
    reply = replies[-1]
    assert reply["template"] == "temporary_password" and reply["to"] == PHONE
    password = reply["variables"]["password"]
    assert reply["variables"]["valid_hours"] == 72
    assert len(password) == 8 and not set(password) & set("01iloO")
    citizen = service_db("identity").citizens.find_one({"national_id": "048090001234"})
    assert citizen["channel"] == "sms" and citizen["must_change_password"] and citizen["full_name"] == "Nguyen Van An"
    ours = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records if not r.name.startswith("pymongo"))
    assert password not in str(citizen) and password not in ours
    assert "048090001234" not in ours and "935111222" not in ours

    # The temporary password works, but only for changing it.
    session = login(client, PHONE, password).get_json()
    assert session["must_change_password"] is True

    # Three days pass unused: the web refuses it with a way out ...
    clock.advance(hours=73)
    expired = login(client, "048090001234", password)
    assert expired.status_code == 401 and expired.get_json()["code"] == "temporary_password_expired"
    assert "MK" in expired.get_json()["detail"]
    # ... and the SMS that says MK still works from the phone it was sent to.
    changed = sms(client, f"MK {password} an-hai-chau-90", id="m2")
    assert changed.get_json() == {"command": "MK", "outcome": "changed"}
    assert replies[-1]["template"] == "password_changed"
    ok = login(client, "048090001234", "an-hai-chau-90")
    assert ok.status_code == 200 and ok.get_json()["must_change_password"] is False


def test_dk_again_reissues_a_lost_password_but_never_takes_over_an_account(world):
    client, replies, clock = world
    sms(client, "DK 048090001234 Nguyễn Văn An 01/05/1990", id="a")
    first = replies[-1]["variables"]["password"]
    clock.advance(minutes=5)  # not a gateway's resend: the citizen texts DK again later
    assert sms(client, "DK 048090001234 Nguyễn Văn An 01/05/1990", id="b").get_json()["outcome"] == "reissued"
    second = replies[-1]["variables"]["password"]
    assert first != second
    assert login(client, PHONE, first).status_code == 401
    # another phone cannot get a password for this national id
    other = sms(client, "DK 048090001234 Nguyễn Văn An 01/05/1990", sender="0905999888", id="c")
    assert other.get_json()["outcome"] == "refused" and replies[-1]["template"] == "reply"
    assert replies[-1]["to"] == "+84905999888"


def test_status_by_sms_only_to_the_registered_phone(world):
    client, replies, _ = world
    assert sms(client, "tt hc-261121-abcde").get_json()["outcome"] == "answered"
    assert "HC-261121-ABCDE" in replies[-1]["variables"]["text"] and "26/11/2026" in replies[-1]["variables"]["text"]
    assert sms(client, "TT HC-261121-ABCDE", sender="0905999888").get_json()["outcome"] == "refused"


@pytest.mark.parametrize("text", ["", "xin chao", "DK 123 An 1/1/1990", "DK 048090001234 An 30/02/1990", "MK chi-mot", "TT"])
def test_malformed_commands_get_a_helpful_reply(world, text):
    client, replies, _ = world
    response = sms(client, text)
    assert response.status_code == 200
    assert replies and replies[-1]["template"] == "reply" and len(replies[-1]["variables"]["text"]) > 20


def test_gateway_token_and_input_checks(world):
    client, replies, _ = world
    assert sms(client, "TT X", token="wrong").status_code == 401
    assert sms(client, "TT X", token="").get_json()["code"] == "invalid_gateway_token"
    bad = sms(client, "TT X", sender="12345")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "from"
    assert replies == []


def kannel(client, text, *, secret=TOKEN, sender=PHONE, query=None, charset="UTF-8"):
    """As Kannel's post-url calls: the secret as the service's name (X-Kannel-Service),
    the number in X-Kannel-From, the text as the body."""
    headers = {"X-Kannel-From": sender, "Content-Type": f'text/plain; charset="{charset}"'}
    if secret:
        headers["X-Kannel-Service"] = secret
    return client.post("/identity/api/v1/sms/kannel", query_string={"id": "k-1", **(query or {})},
                       data=text.encode(charset), headers=headers)


def test_kannel_posts_with_the_secret_out_of_the_url(world):
    client, replies, _ = world
    assert kannel(client, "TT HC-261121-ABCDE").status_code == 200
    assert "dang xu ly" in replies[-1]["variables"]["text"]
    # Vietnamese as UCS-2 (no mo-recode): decoded by the charset Kannel names.
    assert kannel(client, "TT Hồ sơ", charset="UTF-16BE", query={"id": "k-2"}).status_code == 200
    for secret in (None, "wrong"):
        refused = kannel(client, "TT X", secret=secret, query={"id": "k-3"})
        assert refused.status_code == 401 and refused.get_json()["code"] == "invalid_gateway_token"
    # The secret in the query string is refused even when right: it is already in a log.
    in_url = kannel(client, "TT X", query={"id": "k-4", "token": TOKEN})
    assert in_url.status_code == 401 and "URL" in in_url.get_json()["detail"]
    # The old get-url form (token, number and text in the query) is retired, unread.
    old = client.get("/identity/api/v1/sms/kannel", query_string={"token": TOKEN, "from": PHONE, "text": "TT X"})
    assert old.status_code == 410 and old.get_json()["code"] == "kannel_get_url_retired"
    bad = kannel(client, "TT X", sender="1900", query={"id": "k-5"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "from"
    assert len(replies) == 2


def test_inbound_sms_are_rate_limited_per_phone(world):
    client, replies, _ = world
    outcomes = [sms(client, f"TT X{i}").get_json().get("outcome") for i in range(10)]
    assert outcomes.count("rate_limited") == 2
    assert len(replies) == 8
    assert sms(client, "TT X", sender="0905999888").get_json()["outcome"] == "refused"


def test_wrong_old_password_by_sms_counts_towards_lockout(world):
    client, replies, _ = world
    sms(client, "DK 048090001234 Nguyen Van An 01/05/1990", id="x")
    for i in range(5):
        assert sms(client, f"MK sai-mat-khau{i} moi-mat-khau-1", id=f"w{i}").get_json()["outcome"] == "refused"
    password = replies[0]["variables"]["password"]
    # Locked for SMS from that phone, even with the right password ...
    assert sms(client, f"MK {password} moi-mat-khau-1", id="w-right").get_json()["outcome"] == "refused"
    assert "tam khoa" in replies[-1]["variables"]["text"]
    # ... but the lockout is per (account, where the guesses come from): the web still works.
    assert login(client, PHONE, password).status_code == 200


def test_not_configured_inbound_is_refused(settings):
    bootstrap.prepare(settings, demo=True)
    client = create_app(settings, send_reply=lambda *a: None, dossier_status=lambda *a: None).test_client()
    response = client.post("/identity/api/v1/sms/inbound", json={"from": PHONE, "text": "TT X"})
    assert response.status_code == 503 and response.get_json()["code"] == "sms_inbound_not_configured"
