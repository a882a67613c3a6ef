"""A gateway resends a message it got no answer for (issue 19): with the same message id
(Kannel's %I, the JSON inbound's `id`) or the same text from the same phone shortly after.
A resent DK gives the same temporary password, sent once — never a second password that
would make the first one (perhaps already on the phone) useless. And the SMS desk refuses
digits that are not ASCII with a clear reply."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from motcua_common.clock import FixedClock
from motcua_common.rpc import RpcUnavailable
from motcua_identity import bootstrap
from motcua_identity.api import create_app

TOKEN = "gateway-secret"
PHONE = "+84935111222"
DK = "DK 048090001234 Nguyen Van An 01/05/1990"


@pytest.fixture
def world(settings):
    settings = replace(settings, sms_inbound_token=TOKEN, sms_registration_ward="dn-hai-chau")
    bootstrap.prepare(settings, demo=True)
    replies, clock, notify = [], FixedClock(datetime.now(timezone.utc).replace(microsecond=0)), {"down": False}

    def send_reply(to, template, variables, ward_id, key):
        if notify["down"]:
            raise RpcUnavailable("notify is not running")
        replies.append({"to": to, "template": template, "variables": variables, "ward_id": ward_id, "key": key})
        return {"notification_id": f"n{len(replies)}"}

    app = create_app(settings, clock=clock, send_reply=send_reply, dossier_status=lambda *a: None)
    return app.test_client(), replies, clock, notify


def sms(client, text, **extra):
    return client.post("/identity/api/v1/sms/inbound", json={"from": PHONE, "text": text, **extra},
                       headers={"X-Gateway-Token": TOKEN})


def kannel(client, text, message_id):
    return client.post("/identity/api/v1/sms/kannel", query_string={"id": message_id}, data=text.encode(),
                       headers={"X-Kannel-From": PHONE, "X-Kannel-Service": TOKEN,
                                "Content-Type": "text/plain; charset=UTF-8"})


def login(client, password):
    return client.post("/identity/api/v1/sessions", json={"username": "048090001234", "password": password})


def test_a_resend_with_the_same_id_keeps_the_first_password(world, service_db):
    client, replies, clock, _ = world
    assert sms(client, DK, id="gw-1").get_json() == {"command": "DK", "outcome": "registered"}
    password = replies[-1]["variables"]["password"]
    clock.advance(minutes=10)   # a slow gateway: outside the same-text window, same id
    assert sms(client, DK, id="gw-1").get_json() == {"command": "DK", "outcome": "registered"}
    assert len(replies) == 1
    assert login(client, password).status_code == 200


def test_a_resend_with_a_new_id_shortly_after_keeps_the_first_password(world):
    client, replies, clock, _ = world
    sms(client, DK, id="gw-1")
    password = replies[-1]["variables"]["password"]
    clock.advance(seconds=40)
    assert sms(client, "dk  048090001234 nguyen van an 01/05/1990", id="gw-2").get_json()["outcome"] == "registered"
    assert kannel(client, DK, "k-9").status_code == 200            # the same text through Kannel
    assert len(replies) == 1 and login(client, password).status_code == 200
    # Later, DK again is a citizen asking for a new password (the first was lost).
    clock.advance(minutes=5)
    assert sms(client, DK, id="gw-3").get_json()["outcome"] == "reissued"
    assert len(replies) == 2 and replies[-1]["variables"]["password"] != password


def test_kannel_resends_by_id(world):
    client, replies, clock, _ = world
    assert kannel(client, DK, "k-1").status_code == 200
    clock.advance(minutes=10)
    assert kannel(client, DK, "k-1").status_code == 200
    assert len(replies) == 1


def test_when_notify_is_down_the_retry_sends_the_one_password_that_works(world):
    client, replies, _clock, notify = world
    notify["down"] = True
    assert sms(client, DK, id="gw-1").status_code == 503          # the gateway will retry
    notify["down"] = False
    assert sms(client, DK, id="gw-1").get_json()["outcome"] == "reissued"
    [reply] = replies
    assert login(client, reply["variables"]["password"]).status_code == 200


def test_the_dk_reply_names_the_ward(world):
    client, replies, _clock, _ = world
    sms(client, DK, id="gw-1")
    assert replies[-1]["template"] == "temporary_password"
    assert replies[-1]["variables"]["ward_name"] == "Phuong Hai Chau"


@pytest.mark.parametrize("text", ["DK ０４８０９０００１２３４ Nguyen Van An 01/05/1990",
                                  "DK 048090001234 Nguyen Van An ٠١/٠٥/١٩٩٠", "TT ＨＣ-２６１１２１-ＡＢＣＤＥ"])
def test_digits_that_are_not_ascii_get_a_clear_reply(world, service_db, text):
    client, replies, _clock, _ = world
    assert sms(client, text, id="x").get_json() == {"command": "unknown", "outcome": "help"}
    assert "chu so 0-9" in replies[-1]["variables"]["text"]
    assert service_db("identity").citizens.count_documents({}) == 0
