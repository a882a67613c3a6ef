"""Getting messages out, against SecantusDB and real local servers: failover between
gateways without a second SMS, per-gateway rate limits, delivery receipts and their
reconciliation, email over SMTP (aiosmtpd), a throttled broadcast to the 36 heads of
residential groups, identity's replies with a secret, cost metrics, and the SMPP mapping."""
from __future__ import annotations

import email
import email.policy
import logging
import socket
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import smpplib.consts as smpp_consts
from aiosmtpd.controller import Controller
from hypothesis import given, strategies as st
from prometheus_client import REGISTRY

from motcua_notify import bootstrap, domain, store
from motcua_notify.api import create_app
from motcua_notify.gateways import ConsoleGateway, HttpGateway, OutboundSms, route_name
from motcua_common.clock import FixedClock, SystemClock
from motcua_common.config import Settings
from motcua_notify import intake, kannel
from motcua_notify.deps import build_deps
from motcua_notify.mail import SmtpGateway
from motcua_notify.routing import Breaker, GatewayPool, RateLimiter, Route, pool_from_env
from motcua_notify.sender import Sender, SendOptions
from motcua_notify.smpp import outcome_for_status, submits_for

WARD = "dn-hai-chau"
API = "/notify/api/v1"


class Clock:
    def __init__(self):
        now = datetime.now(timezone.utc)
        self.now = now.replace(microsecond=now.microsecond // 1000 * 1000)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db(settings, service_db):
    bootstrap.prepare(settings)
    return service_db("notify")


OPTIONS = SendOptions(retry=domain.RetryPolicy(window_seconds=600, base_seconds=5, max_seconds=120),
                      gateway_timeout_seconds=2, lease_seconds=60, segment_price=850)


def accept_reply(db, to, template, variables, ward_id, key, unaccented=False, now=None):
    """intake.accept_reply on this database, with the clock stopped at `now` (when given)."""
    deps = build_deps(Settings.from_env({}), db=db, verifier=None,
                      clock=FixedClock(now) if now else SystemClock(),
                      options=SendOptions(unaccented=unaccented))
    return intake.accept_reply(deps, None, to, template, variables, ward_id, key)


def reply(db, phone, text="Hồ sơ đang xử lý.", ward_id=WARD, key=None):
    return accept_reply(db, phone, "reply", {"text": text}, ward_id, key or f"k-{phone}-{text}")


def run_until_settled(sender, clock, db, rounds=40, step=10):
    for _ in range(rounds):
        sender.send_due()
        if db[store.NOTIFICATIONS].count_documents({"status": {"$in": ["pending", "sending"]}}) == 0:
            return
        clock.advance(step)
    raise AssertionError("notifications still pending")


# ---------------------------------------------------------------- failover
def test_a_failing_gateway_is_passed_over_for_the_next_and_nothing_is_sent_twice(db, sms_gateway, fallback_gateway):
    clock = Clock()
    monotonic = [0.0]
    for n in range(4):
        sms_gateway.always(f"+8490100010{n}", 503)
    pool = GatewayPool([
        Route("primary", HttpGateway(sms_gateway.url, 2), RateLimiter(0), Breaker(threshold=2, cooldown_seconds=60)),
        Route("fallback", HttpGateway(fallback_gateway.url, 2), RateLimiter(0), Breaker(2, 60)),
    ], clock=lambda: monotonic[0])
    ids = [reply(db, f"+8490100010{n}") for n in range(4)]
    sender = Sender(db, pool, lambda _: None, OPTIONS, clock=clock, rand=lambda: 1.0)
    run_until_settled(sender, clock, db)

    assert len(sms_gateway.requests) == 2                      # two clear failures open the breaker...
    assert {r["status"] for r in sms_gateway.requests} == {503}
    assert len(fallback_gateway.delivered) == 4                # ...and the fallback carries everything
    for notification_id in ids:
        doc = db[store.NOTIFICATIONS].find_one({"_id": notification_id})
        assert doc["status"] == "sent" and doc["gateway"] == "fallback"
        assert sum(r["headers"]["Idempotency-Key"] == notification_id for r in fallback_gateway.requests) == 1

    # After the cool-off one message tries the primary again; it is back, so it stays preferred.
    for n in range(4):
        sms_gateway.always(f"+8490100010{n}", 202)
    monotonic[0] += 61
    later = reply(db, "+84901000100", text="Tin sau")
    run_until_settled(sender, clock, db)
    assert db[store.NOTIFICATIONS].find_one({"_id": later})["gateway"] == "primary"


def test_a_try_that_may_have_gone_through_is_never_moved_to_another_gateway(db, sms_gateway, fallback_gateway):
    clock = Clock()
    phone = "+84901000111"
    sms_gateway.script(phone, (202, 1.5), 503, 503)     # taken but answered too late; then down
    pool = GatewayPool([
        Route("primary", HttpGateway(sms_gateway.url, 0.5), RateLimiter(0), Breaker(threshold=1, cooldown_seconds=600)),
        Route("fallback", HttpGateway(fallback_gateway.url, 2), RateLimiter(0), Breaker(1, 600)),
    ])
    notification_id = reply(db, phone)
    sender = Sender(db, pool, lambda _: None, OPTIONS, clock=clock, rand=lambda: 1.0)
    run_until_settled(sender, clock, db)

    doc = db[store.NOTIFICATIONS].find_one({"_id": notification_id})
    assert doc["status"] == "sent" and doc["gateway"] == "primary" and doc["pinned_gateway"] == "primary"
    assert [r["status"] for r in sms_gateway.to(phone)] == [202, 503, 503, 200]
    assert fallback_gateway.requests == []             # the breaker was open, yet the message stayed
    assert len(sms_gateway.deliveries_to(phone)) == 1


def test_gateways_come_from_the_environment_in_priority_order():
    pool = pool_from_env("https://sms.example.vn/send", {
        "SMS_FALLBACK_GATEWAY_URLS": "https://backup.example.vn/sms, smpp://motcua:pw@10.0.0.5:2775?source=8188",
        "SMS_GATEWAY_RATE_PER_SECOND": "30,10,5",
    }, 5)
    assert pool.names == ["https://sms.example.vn", "https://backup.example.vn", "smpp://10.0.0.5:2775"]
    assert [r.limiter.per_second for r in pool.routes] == [30, 10, 5]
    assert pool_from_env(None, {}, 5).names == ["console"]
    with pytest.raises(ValueError):
        pool_from_env(None, {"SMS_FALLBACK_GATEWAY_URLS": "https://backup.example.vn/sms"}, 5)
    with pytest.raises(ValueError):
        pool_from_env("https://a.example.vn", {"SMS_GATEWAY_RATE_PER_SECOND": "1,2,3"}, 5)


# ---------------------------------------------------------------- Retry-After
def test_a_retry_after_holds_every_message_for_that_gateway_in_every_worker(db, sms_gateway):
    monotonic = [0.0]

    def worker():   # a notify worker of its own: its own pool, the same database
        route = Route(route_name(sms_gateway.url), HttpGateway(sms_gateway.url, 2), RateLimiter(0))
        return Sender(db, GatewayPool([route], clock=lambda: monotonic[0]), lambda _: None, OPTIONS,
                      clock=clock, rand=lambda: 1.0)

    sms_gateway.retry_after = "30"
    sms_gateway.script("+84901000201", 429)
    first = reply(db, "+84901000201")
    clock = Clock()
    this, other = worker(), worker()
    this.send_due()
    assert [r["status"] for r in sms_gateway.requests] == [429]

    # Messages due meanwhile wait too, in this worker and in any other (or one restarted):
    # the gateway gets nothing before its Retry-After is up.
    later = [reply(db, f"+8490100020{n}") for n in (2, 3)]
    clock.advance(10)
    monotonic[0] += 10
    this.send_due()
    other.send_due()
    assert len(sms_gateway.requests) == 1
    for notification_id in later:
        doc = db[store.NOTIFICATIONS].find_one({"_id": notification_id})
        assert doc["status"] == "pending" and doc["attempts"] == 0   # not even claimed

    clock.advance(21)
    monotonic[0] += 21
    other.send_due()
    assert len(sms_gateway.requests) == 4
    assert all(db[store.NOTIFICATIONS].find_one({"_id": i})["status"] == "sent" for i in [first, *later])


def test_while_a_gateway_asks_to_wait_the_next_one_carries_the_messages(db, sms_gateway, fallback_gateway):
    monotonic = [0.0]
    sms_gateway.retry_after = "60"
    sms_gateway.script("+84901000211", 429)
    pool = GatewayPool([
        Route("primary", HttpGateway(sms_gateway.url, 2), RateLimiter(0), Breaker(threshold=5, cooldown_seconds=60)),
        Route("fallback", HttpGateway(fallback_gateway.url, 2), RateLimiter(0), Breaker(5, 60)),
    ], clock=lambda: monotonic[0])
    throttled = reply(db, "+84901000211")
    clock = Clock()
    sender = Sender(db, pool, lambda _: None, OPTIONS, clock=clock, rand=lambda: 1.0)
    sender.send_due()
    others = [reply(db, f"+8490100021{n}") for n in (2, 3)]
    clock.advance(1)
    sender.send_due()
    assert [r["status"] for r in sms_gateway.requests] == [429]   # nothing more to the one that asked
    assert len(fallback_gateway.delivered) == 2
    assert all(db[store.NOTIFICATIONS].find_one({"_id": i})["gateway"] == "fallback" for i in others)
    # A 429 is a clear "not taken": the throttled message may move too, once its own wait is up.
    clock.advance(60)
    sender.send_due()
    assert db[store.NOTIFICATIONS].find_one({"_id": throttled})["gateway"] == "fallback"
    assert len(sms_gateway.requests) == 1


# ---------------------------------------------------------------- rate limit
def test_the_rate_limit_spaces_messages_at_the_configured_pace():
    now, slept = [100.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(5, clock=lambda: now[0], sleep=sleep)
    for _ in range(15):
        limiter.acquire()
    # A burst of one second's worth, then one every 0.2 s: 15 messages take 2 s, not less.
    assert slept[:4] == [] or len(slept) == 10
    assert now[0] - 100.0 == pytest.approx(2.0)
    assert all(s == pytest.approx(0.2) for s in slept)


def test_a_limited_gateway_is_never_sent_more_than_its_rate(db, sms_gateway):
    pool = GatewayPool([Route("only", HttpGateway(sms_gateway.url, 2), RateLimiter(20))])
    for n in range(30):
        reply(db, f"+8490300{n:04d}")
    clock = Clock()
    Sender(db, pool, lambda _: None, OPTIONS, clock=clock).send_due()
    times = [r["at"] for r in sms_gateway.requests]
    assert len(times) == 30
    # A token bucket of 20 a second (a burst of 20): no stretch of time holds more than
    # 20 messages plus 20 for each second it lasts (a little slack for the clock).
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= 20 + 20 * (times[j] - times[i]) + 1
    assert times[-1] - times[0] >= 0.45   # the ten beyond the burst waited their turn


# ---------------------------------------------------------------- delivery receipts
def test_receipts_settle_sent_messages_and_silence_is_reconciled_as_expired(settings, verifier, db, sms_gateway):
    ids = [reply(db, f"+8490400000{n}") for n in range(3)]
    clock = Clock()
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=clock).send_due()
    client = create_app(replace(settings, sms_delivery_token="gw-secret"), verifier=verifier).test_client()
    headers = {"X-Gateway-Token": "gw-secret"}

    assert client.post(f"{API}/receipts", json={"id": ids[0], "status": "delivered"}).status_code == 401
    bad = client.post(f"{API}/receipts", json={"id": ids[0], "status": "lost"}, headers=headers)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "status"
    assert client.post(f"{API}/receipts", json={"id": "nope", "status": "delivered"},
                       headers=headers).get_json()["code"] == "notification_not_found"
    answer = client.post(f"{API}/receipts", json={"id": ids[0], "status": "delivered"}, headers=headers)
    assert answer.status_code == 200 and answer.get_json() == {"id": ids[0], "status": "delivered"}
    client.post(f"{API}/receipts", json={"id": ids[1], "status": "undeliverable"}, headers=headers)

    assert store.reconcile_unreceipted(db, clock.now + timedelta(hours=1), 86400) == 0
    assert store.reconcile_unreceipted(db, clock.now + timedelta(hours=25), 86400) == 1
    statuses = {i: db[store.NOTIFICATIONS].find_one({"_id": i})["status"] for i in ids}
    assert statuses == {ids[0]: "delivered", ids[1]: "undeliverable", ids[2]: "expired"}
    # A receipt arriving after the guess is what really happened.
    client.post(f"{API}/receipts", json={"id": ids[2], "status": "delivered"}, headers=headers)
    assert db[store.NOTIFICATIONS].find_one({"_id": ids[2]})["status"] == "delivered"


def test_a_gateway_without_the_right_token_is_refused_in_notifys_words(settings, verifier, db):
    # Each job its own secret: the inbound SMS token and the report-signing key do not
    # open the receipts route.
    client = create_app(replace(settings, sms_delivery_token="gw-secret", sms_inbound_token="inbound-secret",
                                sms_report_signing_key="report-signing-key"), verifier=verifier).test_client()
    for headers in ({}, {"X-Gateway-Token": "wrong"}, {"X-Gateway-Token": "inbound-secret"},
                    {"X-Gateway-Token": "report-signing-key"}):
        refused = client.post(f"{API}/receipts", json={"id": "x", "status": "delivered"}, headers=headers)
        assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
        problem = refused.get_json()
        assert problem["code"] == "invalid_gateway_token" and problem["title"] == "Gateway không hợp lệ"
        assert problem["detail"] == "Thiếu hoặc sai X-Gateway-Token. / Missing or wrong X-Gateway-Token."
    unsigned = client.get(f"{API}/kannel/dlr?id=x&exp=9999999999&sig=nope&type=1")
    assert unsigned.status_code == 401 and unsigned.get_json()["title"] == "Gateway không hợp lệ"
    # Unset on our side: no gateway may report.
    closed = create_app(replace(settings, sms_delivery_token=None, sms_inbound_token="inbound-secret"),
                        verifier=verifier).test_client()
    for token in ("", "inbound-secret"):
        assert closed.post(f"{API}/receipts", json={"id": "x", "status": "delivered"},
                           headers={"X-Gateway-Token": token}).status_code == 401


def test_a_kannel_report_url_settles_its_one_message_until_it_expires(settings, verifier, db, sms_gateway):
    """Kannel's dlr-url cannot carry a header: its URL is signed per message with an
    expiry (SMS_REPORT_SIGNING_KEY). Copied from a log it settles no other message, is
    refused once expired or sent through the public ingress, and a replay after the final
    report changes nothing."""
    ids = [reply(db, f"+8490400001{n}") for n in range(2)]
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=Clock()).send_due()
    key = "report-signing-key-for-tests"
    client = create_app(replace(settings, sms_report_signing_key=key, sms_inbound_token="inbound-secret"),
                        verifier=verifier).test_client()
    now = int(datetime.now(timezone.utc).timestamp())

    def report(notification_id, expires, type_, signed_id=None, signing_key=key):
        sig = kannel.dlr_signature(signing_key, signed_id or notification_id, expires)
        return client.get(f"{API}/kannel/dlr", query_string={"id": notification_id, "exp": expires, "sig": sig,
                                                              "type": type_})

    assert report(ids[1], now + 600, 1, signed_id=ids[0]).status_code == 401        # another message's URL
    assert report(ids[0], now - 1, 1).status_code == 401                             # expired
    assert report(ids[0], now + 600, 1, signing_key="inbound-secret").status_code == 401
    # Through the public ingress (a proxy's header): refused even when signed right.
    sig = kannel.dlr_signature(key, ids[0], now + 600)
    proxied = client.get(f"{API}/kannel/dlr", query_string={"id": ids[0], "exp": now + 600, "sig": sig, "type": 1},
                         headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and proxied.get_json()["code"] == "kannel_report_not_internal"
    settled = report(ids[0], now + 600, 1)
    assert settled.status_code == 200 and settled.get_json()["status"] == "delivered"
    assert report(ids[0], now + 600, 2).get_json()["status"] == "delivered"          # final: a replay changes nothing
    assert db[store.NOTIFICATIONS].find_one({"_id": ids[1]})["status"] == "sent"


def test_console_messages_await_no_receipt(db):
    notification_id = reply(db, "+84904000009")
    clock = Clock()
    Sender(db, ConsoleGateway(), lambda _: None, OPTIONS, clock=clock).send_due()
    assert store.reconcile_unreceipted(db, clock.now + timedelta(days=30), 86400) == 0
    assert db[store.NOTIFICATIONS].find_one({"_id": notification_id})["status"] == "sent"


# ---------------------------------------------------------------- email
class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_group_members_with_an_email_address_get_the_broadcast_by_smtp(db, sms_gateway, smtp_server):
    inbox, port = smtp_server
    clock = Clock()
    group, errors = domain.check_group({"name": "Ban công tác Mặt trận", "ward_id": WARD,
                                        "members": ["0905 111 222", "Truong.Ban@Example.VN"]})
    assert errors == [] and group.members == ("+84905111222", "Truong.Ban@example.vn")
    group_id = store.create_group(db, group, "wa-1", clock.now)
    text = "Mời họp Ban công tác Mặt trận lúc 8h00 thứ Hai tại hội trường phường."
    broadcast_id = store.create_broadcast(db, store.find_group(db, group_id), text, "wa-1", clock.now)
    mail = SmtpGateway("127.0.0.1", port, "motcua@phuong.example.vn", timeout_seconds=5)
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=clock, mail=mail).send_due()

    [sms] = sms_gateway.to("+84905111222")
    assert sms["body"]["text"] == text
    [message] = inbox.messages
    assert message.rcpt_tos == ["Truong.Ban@example.vn"]
    content = message.content.decode("utf-8")
    by_mail = db[store.NOTIFICATIONS].find_one({"source_id": broadcast_id, "channel": "email"})
    assert f"Message-ID: <{by_mail['_id']}@motcua>" in content
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    assert parsed.get_content().strip() == text
    assert by_mail["status"] == "sent" and by_mail["to"] == "T***@example.vn"


def test_an_unreachable_mail_server_is_retried(db):
    clock = Clock()
    group = {"_id": "g1", "ward_id": WARD, "members": ["a@example.vn"]}
    store.create_broadcast(db, group, "Thông báo", "wa-1", clock.now)
    mail = SmtpGateway("127.0.0.1", 1, "motcua@example.vn", timeout_seconds=1)
    Sender(db, ConsoleGateway(), lambda _: None, OPTIONS, clock=clock, mail=mail).send_due()
    doc = db[store.NOTIFICATIONS].find_one({"channel": "email"})
    assert doc["status"] == "pending" and doc["attempts"] == 1 and doc["last_error"].startswith("SMTP")


# ---------------------------------------------------------------- broadcasts
def test_a_broadcast_to_36_group_heads_is_throttled_and_each_delivery_tracked(settings, verifier, db, token,
                                                                           sms_gateway):
    clock = Clock()
    members = [f"09050{n:05d}" for n in range(36)]
    client = create_app(settings, verifier=verifier).test_client()
    admin = token("ward_admin", WARD)
    group_id = client.post(f"{API}/groups", json={"name": "Tổ trưởng 36 khu dân cư", "ward_id": WARD,
                                                  "members": members}, headers=admin).get_json()["group_id"]
    group = store.find_group(db, group_id)
    broadcast_id = store.create_broadcast(db, group, "Mời 36 tổ trưởng họp lúc 14h thứ Sáu.", "wa-1",
                                          clock.now, per_second=4)
    due = sorted(d["next_attempt_at"] for d in db[store.NOTIFICATIONS].find({"source_id": broadcast_id}))
    assert (due[-1] - due[0]).total_seconds() == pytest.approx(35 / 4, abs=0.01)   # spread, not all at once

    sender = Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=clock)
    sender.send_due()
    assert len(sms_gateway.requests) == 1            # only what is due now
    sms_gateway.script("+84905000007", 503)
    for _ in range(20):
        clock.advance(1)
        sender.send_due()
    progress = client.get(f"{API}/broadcasts/{broadcast_id}", headers=token("officer", WARD)).get_json()
    assert progress["recipients"] == 36 and progress["by_status"] == {"sent": 36}
    assert len(progress["deliveries"]) == 36 and all(d["to"].startswith("+84*") for d in progress["deliveries"])
    assert len(sms_gateway.delivered) == 36
    assert client.get(f"{API}/broadcasts/{broadcast_id}", headers=token("officer", "dn-lien-chieu")).status_code == 403
    assert client.get(f"{API}/broadcasts/nope", headers=admin).get_json()["code"] == "broadcast_not_found"


# ---------------------------------------------------------------- identity's replies
def test_a_temporary_password_is_erased_once_sent_and_never_logged_by_the_console(db, caplog):
    clock = Clock()
    password = "Pw9xZ2kQ7t"
    # Accepted at the sender's clock: a real clock a millisecond later would not be due yet.
    notification_id = accept_reply(db, "0901 222 333", "temporary_password",
                                   {"password": password, "valid_hours": 72}, None, "dk-1", now=clock())
    assert accept_reply(db, "0901 222 333", "password_changed", {}, None, "dk-1", now=clock()) == notification_id
    with caplog.at_level(logging.INFO):
        Sender(db, ConsoleGateway(), lambda _: None, OPTIONS, clock=clock).send_due()
    doc = db[store.NOTIFICATIONS].find_one({"_id": notification_id})
    assert doc["status"] == "sent" and "params" not in doc and "text" not in doc and doc["secret"] is True
    assert db[store.NOTIFICATIONS].count_documents({}) == 1
    assert password not in caplog.text and "bí mật" in caplog.text
    [event] = [o["envelope"] for o in db.outbox.find({"routing_key": "NotificationSent"})]
    assert password not in str(event) and event["payload"]["ward_id"] == ""


def test_a_temporary_password_is_erased_when_it_finally_fails(db, sms_gateway):
    clock = Clock()
    notification_id = accept_reply(db, "+84901222334", "temporary_password",
                                    {"password": "Pw1", "valid_hours": "72"}, WARD, "dk-2", now=clock())
    sms_gateway.always("+84901222334", 400)
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=clock).send_due()
    doc = db[store.NOTIFICATIONS].find_one({"_id": notification_id})
    assert doc["status"] == "failed" and doc["reason"] == "gateway_rejected" and "params" not in doc


def test_replies_are_checked_before_anything_is_stored():
    with pytest.raises(domain.ReplyRefused) as refused:
        domain.check_reply("+84901222333", "temporary_password", {"password": "S3cret!"}, WARD, "k")
    assert [e.field for e in refused.value.errors] == ["variables"] and "S3cret" not in str(refused.value)
    with pytest.raises(domain.ReplyRefused) as refused:
        domain.check_reply("0241234567", "welcome", [], "", "")
    assert [e.field for e in refused.value.errors] == ["to", "template", "variables", "ward_id", "key"]
    with pytest.raises(domain.ReplyRefused):
        domain.check_reply("0901222333", "reply", {"text": "x" * 1000}, None, "k")
    ok = domain.check_reply("0901222333", "password_changed", None, None, "k")
    assert ok.to == "+84901222333" and ok.params == {}


# ---------------------------------------------------------------- metrics
def test_segments_and_cost_are_counted_per_ward_and_long_messages_flagged(db, sms_gateway):
    ward = "metrics-ward"

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (value("motcua_notify_sms_segments_total", ward_id=ward, gateway=f"http://127.0.0.1:{sms_gateway.server.server_address[1]}"),
              value("motcua_notify_sms_cost_total", ward_id=ward),
              value("motcua_notify_sms_long_total", ward_id=ward, template="reply"))
    reply(db, "+84906000001", text="Ngắn.", ward_id=ward, key="m-1")
    reply(db, "+84906000002", text="Dấu " * 60, ward_id=ward, key="m-2")
    clock = Clock()
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=clock).send_due()
    long_segments = domain.encode_sms(("Dấu " * 60).strip()).segments
    assert long_segments > 2
    after = (value("motcua_notify_sms_segments_total", ward_id=ward, gateway=f"http://127.0.0.1:{sms_gateway.server.server_address[1]}"),
             value("motcua_notify_sms_cost_total", ward_id=ward),
             value("motcua_notify_sms_long_total", ward_id=ward, template="reply"))
    assert after[0] - before[0] == 1 + long_segments
    assert after[1] - before[1] == (1 + long_segments) * 850
    assert after[2] - before[2] == 1


# ---------------------------------------------------------------- SMPP
def test_smpp_parts_carry_a_concatenation_header_and_never_split_a_character():
    text = "Hồ sơ đã được tiếp nhận. " * 6
    body = domain.encode_sms(text)
    submits = submits_for(OutboundSms("n1", "+84901234567", body.text, body.encoding, body.segments), 0x2A)
    assert len(submits) == body.segments == 3
    for index, submit in enumerate(submits, start=1):
        assert submit.short_message[:6] == bytes([5, 0, 3, 0x2A, 3, index])
        assert submit.data_coding == smpp_consts.SMPP_ENCODING_ISO10646 and submit.esm_class == 0x40
        assert len(submit.short_message) - 6 <= 134
    assert "".join(s.short_message[6:].decode("utf-16-be") for s in submits) == body.text
    single = domain.encode_sms("Ho so da duoc tiep nhan {x}", unaccented=True)
    [only] = submits_for(OutboundSms("n2", "+84901234567", single.text, single.encoding, 1), 1)
    assert only.data_coding == smpp_consts.SMPP_ENCODING_DEFAULT and only.esm_class == 0
    assert only.short_message.count(b"\x1b") == 2     # { and } from the extension table


def test_smpp_answers_map_to_retry_or_reject():
    assert outcome_for_status(smpp_consts.SMPP_ESME_ROK).accepted
    for busy in (smpp_consts.SMPP_ESME_RTHROTTLED, smpp_consts.SMPP_ESME_RMSGQFUL, smpp_consts.SMPP_ESME_RSYSERR):
        assert outcome_for_status(busy).retryable
    wrong = outcome_for_status(smpp_consts.SMPP_ESME_RINVDSTADR)
    assert not wrong.accepted and not wrong.retryable and wrong.detail == "SMPP 0x0000000B"


@given(st.text(alphabet=st.sampled_from("abcdếđươ{}€ \U0001F600"), max_size=400), st.booleans())
def test_parts_are_exactly_the_counted_segments(text, unaccented):
    body = domain.encode_sms(text, unaccented)
    parts = domain.split_parts(body.text, body.encoding)
    assert "".join(parts) == body.text and len(parts) == body.segments


def test_sent_and_failed_messages_are_counted_per_ward(db, sms_gateway):
    from prometheus_client import REGISTRY

    def count(status: str) -> float:
        return REGISTRY.get_sample_value("motcua_ward_notifications_total",
                                         {"channel": "sms", "status": status, "ward_id": WARD}) or 0.0

    sent_before, failed_before = count("sent"), count("failed")
    sms_gateway.always("+84901000201", 400)  # the provider refuses this number for good
    pool = GatewayPool([Route("primary", HttpGateway(sms_gateway.url, 2), RateLimiter(0), Breaker(2, 60))])
    reply(db, "+84901000200")
    reply(db, "+84901000201")
    clock = Clock()
    run_until_settled(Sender(db, pool, lambda _: None, OPTIONS, clock=clock, rand=lambda: 1.0), clock, db)
    assert (count("sent") - sent_before, count("failed") - failed_before) == (1.0, 1.0)


# ---------------------------------------------------------------- a step's note, asked of dossier at send time
def test_a_note_waits_for_dossier_and_a_missing_note_is_never_sent(db, sms_gateway):
    from motcua_common.events import new_event, parse_envelope
    from motcua_notify.sender import DossierUnavailable

    clock = Clock()
    deps = build_deps(Settings.from_env({}), db=db, verifier=None, clock=FixedClock(clock.now))
    event = new_event("DossierStatusChanged", WARD, {
        "dossier_id": "d-1", "ward_id": WARD, "from_status": "received", "to_status": "rejected",
        "actor_id": "off-1", "receipt_code": "HC-261201-000041", "citizen_id": "c-1", "procedure_code": "HT-KS"})
    assert intake.accept_event(deps, None, parse_envelope(event)) == "processed"
    answers = {"down": True}

    def dossiers(dossier_id, event_id):
        assert (dossier_id, event_id) == ("d-1", event["event_id"])
        if answers["down"]:
            raise DossierUnavailable("dossier is not running")
        return {"procedure": "Đăng ký khai sinh", "note": "Không thuộc thẩm quyền  của phường.", "e_result": True}

    sender = Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: {"phone": "+84901000041"}, OPTIONS, clock=clock,
                    rand=lambda: 1.0, dossiers=dossiers)
    sender.send_due()
    doc = db[store.NOTIFICATIONS].find_one({"source_id": event["event_id"]})
    assert doc["status"] == "pending" and doc["attempts"] == 1 and sms_gateway.requests == []
    answers["down"] = False
    clock.advance(60)
    sender.send_due()
    [request] = sms_gateway.to("+84901000041")
    assert request["body"]["text"] == ("Hồ sơ HC-261201-000041 (Đăng ký khai sinh) không được giải quyết. "
                                       "Lý do: Không thuộc thẩm quyền của phường. Cần hỏi thêm, xin liên hệ "
                                       "Bộ phận Một cửa phường")
    # A note template whose note dossier cannot give is never sent with a hole in it.
    other = new_event("DossierStatusChanged", WARD, {**event["payload"], "dossier_id": "d-unknown"})
    intake.accept_event(deps, None, parse_envelope(other))
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: {"phone": "+84901000041"}, OPTIONS, clock=clock,
           dossiers=lambda *_: None).send_due()
    assert db[store.NOTIFICATIONS].find_one({"source_id": other["event_id"]})["reason"] == "template_error"
    assert len(sms_gateway.to("+84901000041")) == 1


def test_a_result_ready_sms_does_not_wait_for_dossier(db, sms_gateway):
    """Its details (an online copy exists) are a nicety: with dossier silent it goes out
    plain, at once, rather than after dossier returns — or never."""
    from motcua_common.events import new_event, parse_envelope
    from motcua_notify.sender import DossierUnavailable

    clock = Clock()
    deps = build_deps(Settings.from_env({}), db=db, verifier=None, clock=FixedClock(clock.now))
    event = new_event("DossierResultReady", WARD, {
        "dossier_id": "d-7", "receipt_code": "HC-261201-000077", "ward_id": WARD, "citizen_id": "c-7"})
    assert intake.accept_event(deps, None, parse_envelope(event)) == "processed"

    def silent(*_):
        raise DossierUnavailable("dossier is not running")

    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: {"phone": "+84901000077"}, OPTIONS, clock=clock,
           rand=lambda: 1.0, dossiers=silent).send_due()
    [request] = sms_gateway.to("+84901000077")
    assert "HC-261201-000077" in request["body"]["text"]
    assert db[store.NOTIFICATIONS].find_one({"source_id": event["event_id"]})["status"] == "sent"
