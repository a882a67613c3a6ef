"""notify's part of "a phone is enough" (issue 19), against the SecantusDB server: delivery
reports counted per ward and outcome (motcua_ward_sms_delivery_total{ward_id,status}:
delivered, failed, expired), so that "SMS sent" is never taken for "SMS received"; the DK
reply naming the ward identity placed the citizen in; the one-time code of a web
registration treated as the credential it is."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from motcua_notify import bootstrap, domain, notifications, store
from motcua_notify.api import create_app

API = "/notify/api/v1"
WARD, OTHER = "dn-son-tra", "dn-ngu-hanh-son"   # wards no other notify test counts in


@pytest.fixture
def db(settings, service_db):
    bootstrap.prepare(settings)
    return service_db("notify")


@pytest.fixture
def app(settings, verifier, db):
    return create_app(replace(settings, sms_delivery_token="gw-secret"), verifier=verifier)


def sent_sms(db, ward_id: str, phone: str, hours_ago: float = 1) -> str:
    now = datetime.now(timezone.utc)
    doc = store.new_notification(template="broadcast", params={"text": "x"}, ward_id=ward_id,
                                 source_id=f"s-{phone}", phone=phone, now=now)
    doc.update(status=domain.SENT, awaits_receipt=True, sent_at=now - timedelta(hours=hours_ago))
    db[store.NOTIFICATIONS].insert_one(doc)
    return doc["_id"]


def count(ward_id: str, status: str) -> float:
    return REGISTRY.get_sample_value("motcua_ward_sms_delivery_total", {"ward_id": ward_id, "status": status}) or 0.0


def test_delivery_reports_are_counted_per_ward_and_outcome(app, db):
    client = app.test_client()
    headers = {"X-Gateway-Token": "gw-secret"}
    before = {(w, s): count(w, s) for w in (WARD, OTHER) for s in ("delivered", "failed", "expired")}
    delivered = [sent_sms(db, WARD, f"+8490500000{n}") for n in range(3)]
    failed = sent_sms(db, OTHER, "+84905000009")
    silent = [sent_sms(db, WARD, "+84905000010", hours_ago=48), sent_sms(db, OTHER, "+84905000011", hours_ago=48)]

    for notification_id in delivered:
        assert client.post(f"{API}/receipts", json={"id": notification_id, "status": "delivered"},
                           headers=headers).status_code == 200
    # The gateway reports the same message twice: counted once.
    client.post(f"{API}/receipts", json={"id": delivered[0], "status": "delivered"}, headers=headers)
    client.post(f"{API}/receipts", json={"id": failed, "status": "undeliverable"}, headers=headers)
    # No report within the validity period: expired, per ward.
    assert notifications.expire_unreceipted(app.extensions["motcua"]) == 2

    grew = {(w, s): count(w, s) - before[(w, s)] for w in (WARD, OTHER) for s in ("delivered", "failed", "expired")}
    assert grew == {(WARD, "delivered"): 3, (WARD, "failed"): 0, (WARD, "expired"): 1,
                    (OTHER, "delivered"): 0, (OTHER, "failed"): 1, (OTHER, "expired"): 1}
    assert {db[store.NOTIFICATIONS].find_one({"_id": i})["status"] for i in silent} == {"expired"}
    # On the service's metrics page, beside the shared per-ward outcome counter the dashboards read.
    text = client.get("/notify/metrics").get_data(as_text=True)
    assert f'motcua_ward_sms_delivery_total{{status="delivered",ward_id="{WARD}"}}' in text
    assert f'motcua_ward_notifications_total{{channel="sms",status="delivered",ward_id="{WARD}"}}' in text


def test_the_dk_reply_names_the_ward_when_identity_gives_it():
    named = domain.check_reply("0935111222", "temporary_password",
                               {"password": "abcd2345", "valid_hours": 72, "ward_name": "Phuong Hai Chau"}, WARD, "k1")
    text = domain.render(named.template, named.params)
    assert "tài khoản tại Phuong Hai Chau" in text and "abcd2345" in text and "MK abcd2345" in text
    plain = domain.render("temporary_password", {"password": "abcd2345", "valid_hours": 72})
    assert "tài khoản tại" not in plain and "abcd2345" in plain
    assert domain.encode_sms(text).segments <= domain.MAX_REPLY_SEGMENTS


def test_the_phone_code_is_a_reply_and_a_secret():
    reply = domain.check_reply("0905123456", "phone_code", {"code": "123456", "minutes": 10}, WARD, "phone-code:c1:1")
    assert "123456" in domain.render(reply.template, reply.params)
    assert domain.is_secret("phone_code") and domain.is_secret("temporary_password")
    with pytest.raises(domain.ReplyRefused) as refused:
        domain.check_reply("0905123456", "phone_code", {"minutes": 10}, WARD, "k")
    assert "code" in str(refused.value) and "123456" not in str(refused.value)
