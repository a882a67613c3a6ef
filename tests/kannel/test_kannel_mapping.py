"""The Kannel gateway's mapping, without Kannel: smsbox's answers, report types, the
sendsms parameters and the settings it refuses to start without."""
from __future__ import annotations

import pytest

from services.notify import domain
from services.notify.gateways import OutboundSms
from services.notify.kannel import (
    KannelConfig, KannelGateway, dlr_signature, dlr_signature_ok, outcome_for_answer, receipt_status,
)
from services.notify.routing import pool_from_env

ENV = {"SMS_GATEWAY": "kannel", "KANNEL_SENDSMS_URL": "http://kannel:13013/cgi-bin/sendsms",
       "KANNEL_SENDSMS_USER": "motcua", "KANNEL_SENDSMS_PASSWORD": "pw",
       "KANNEL_DLR_URL": "http://notify-api:8080/notify/api/v1/kannel/dlr", "SMS_INBOUND_TOKEN": "secret"}


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


def test_each_report_url_is_signed_for_its_own_message():
    sig = dlr_signature("secret", "n-1")
    assert dlr_signature_ok("secret", "n-1", sig)
    assert not dlr_signature_ok("secret", "n-2", sig)
    assert not dlr_signature_ok(None, "n-1", sig)


def test_sendsms_parameters_carry_coding_charset_and_the_report_url():
    gateway = pool_from_env(None, ENV, 5).routes[0].gateway
    assert isinstance(gateway, KannelGateway)
    sms = OutboundSms(id="n-1", to="+84977086419", text="Hồ sơ", encoding=domain.UCS2, segments=1)
    params = gateway.params(sms)
    assert params["coding"] == "2" and params["charset"] == "UTF-8" and params["dlr-mask"] == "31"
    assert params["dlr-url"].startswith(ENV["KANNEL_DLR_URL"] + "?id=n-1&sig=") and params["dlr-url"].endswith("&type=%d")
    assert gateway.params(OutboundSms("n-2", "+84977086419", "Ho so", domain.GSM7, 1))["coding"] == "0"


def test_kannel_comes_first_and_needs_its_settings():
    pool = pool_from_env("http://gw.example/sms", ENV, 5)
    assert pool.names == ["kannel://kannel:13013", "http://gw.example"]
    for missing in ("KANNEL_SENDSMS_URL", "KANNEL_DLR_URL", "SMS_INBOUND_TOKEN"):
        with pytest.raises(ValueError, match=missing):
            KannelConfig.from_env({k: v for k, v in ENV.items() if k != missing}, None if missing == "SMS_INBOUND_TOKEN" else "secret")
    with pytest.raises(ValueError):
        pool_from_env(None, {**ENV, "SMS_GATEWAY": "kanel"}, 5)
