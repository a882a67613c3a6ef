"""The Kannel gateway's mapping, without Kannel: smsbox's answers, report types, the
sendsms parameters and the settings it refuses to start without."""
from __future__ import annotations

import pytest

from services.notify import domain
from services.notify.gateways import OutboundSms
from services.notify.kannel import (
    REPORT_URL_LIFETIME, KannelConfig, KannelGateway, dlr_signature, dlr_signature_ok, outcome_for_answer,
    receipt_status,
)
from services.notify.routing import pool_from_env

ENV = {"SMS_GATEWAY": "kannel", "KANNEL_SENDSMS_URL": "http://kannel:13013/cgi-bin/sendsms",
       "KANNEL_SENDSMS_USER": "motcua", "KANNEL_SENDSMS_PASSWORD": "pw",
       "KANNEL_DLR_URL": "http://notify-api:8080/notify/api/v1/kannel/dlr",
       "SMS_REPORT_SIGNING_KEY": "report-signing-key-1", "SMS_INBOUND_TOKEN": "inbound-token-1"}


def test_smsbox_answers_map_to_outcomes():
    assert outcome_for_answer(202, "0: Accepted for delivery").accepted
    assert outcome_for_answer(202, "3: Queued for later delivery").accepted
    busy = outcome_for_answer(503, "Temporal failure, try again later.")
    assert busy.retryable and not busy.ambiguous and "Temporal failure" in busy.detail
    assert outcome_for_answer(403, "Authorization failed for sendsms").retryable
    refused = outcome_for_answer(400, "Missing receiver number, rejected")
    assert not refused.accepted and not refused.retryable


def test_report_types_settle_only_final_states():
    assert receipt_status(1) == domain.DELIVERED
    assert receipt_status(2) == receipt_status(16) == domain.UNDELIVERABLE
    assert receipt_status(8) is None and receipt_status(4) is None


def test_each_report_url_is_signed_for_its_own_message_until_it_expires():
    sig = dlr_signature("secret", "n-1", 2000)
    assert dlr_signature_ok("secret", "n-1", "2000", sig, now=1999)
    assert not dlr_signature_ok("secret", "n-2", "2000", sig, now=1999)
    assert not dlr_signature_ok("secret", "n-1", "2001", sig, now=1999)     # the expiry is signed too
    assert not dlr_signature_ok("secret", "n-1", "2000", sig, now=2001)     # expired
    assert not dlr_signature_ok(None, "n-1", "2000", sig, now=1999)


def test_sendsms_is_a_post_with_the_text_in_the_body_and_no_secret_in_the_url():
    gateway = pool_from_env(None, ENV, 5).routes[0].gateway
    assert isinstance(gateway, KannelGateway)
    gateway.clock = lambda: 1_000_000
    sms = OutboundSms(id="n-1", to="+84977086419", text="Hồ sơ", encoding=domain.UCS2, segments=1)
    headers = gateway.headers(sms)
    assert headers["X-Kannel-Coding"] == "2" and headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert headers["X-Kannel-DLR-Mask"] == "31" and headers["X-Kannel-Password"] == "pw"
    expires = 1_000_000 + REPORT_URL_LIFETIME
    assert headers["X-Kannel-DLR-URL"] == (f"{ENV['KANNEL_DLR_URL']}?id=n-1&exp={expires}"
                                           f"&sig={dlr_signature('report-signing-key-1', 'n-1', expires)}&type=%d")
    assert gateway.headers(OutboundSms("n-2", "+84977086419", "Ho so", domain.GSM7, 1))["X-Kannel-Coding"] == "0"
    sent = []

    class Session:
        def post(self, url, data, headers, timeout):
            sent.append((url, data, headers))
            return type("Answer", (), {"status_code": 202, "text": "0: Accepted for delivery"})()

    gateway.session = Session()
    assert gateway.send(sms).accepted
    [(url, data, _)] = sent
    assert url == ENV["KANNEL_SENDSMS_URL"] and data == "Hồ sơ".encode()


def test_kannel_comes_first_and_needs_its_settings():
    pool = pool_from_env("http://gw.example/sms", ENV, 5)
    assert pool.names == ["kannel://kannel:13013", "http://gw.example"]
    for missing in ("KANNEL_SENDSMS_URL", "KANNEL_DLR_URL", "SMS_REPORT_SIGNING_KEY"):
        with pytest.raises(ValueError, match=missing):
            KannelConfig.from_env({k: v for k, v in ENV.items() if k != missing})
    with pytest.raises(ValueError):
        pool_from_env(None, {**ENV, "SMS_GATEWAY": "kanel"}, 5)


def test_the_report_signing_key_is_its_own_secret():
    for other in ("SMS_INBOUND_TOKEN", "SMS_DELIVERY_TOKEN"):
        with pytest.raises(ValueError, match=f"differ from {other}"):
            KannelConfig.from_env({**ENV, other: ENV["SMS_REPORT_SIGNING_KEY"]})
    with pytest.raises(ValueError, match="at least"):
        KannelConfig.from_env({**ENV, "SMS_REPORT_SIGNING_KEY": "short"})
