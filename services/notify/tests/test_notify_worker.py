"""The real notify worker end to end: dossier's events through the outbox, the relay and
RabbitMQ; the phone asked of identity over nameko RPC (a stand-in identity worker); SMS
posted to a local recording gateway.

One notify worker and one identity stand-in serve the whole module (each costs seconds
to start). That is safe because every test texts its own citizens, on its own numbers,
and looks only at its own notifications."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from nameko.exceptions import RemoteError

from motcua_common import rpc
from motcua_common.config import Settings
from motcua_common.events import new_event
from motcua_common.mongo import connect
from motcua_common.outbox import OUTBOX, commit
from motcua_common.relay import Relay
from motcua_testing.fixtures import create_vhost, delete_vhost, settings_env, wait_for
from motcua_notify import bootstrap, domain, store

SUPPORT = Path(__file__).resolve().parent / "support"
WARD = "dn-hai-chau"
RETRY_WINDOW_SECONDS = 4
CONTACTS = {
    "c-happy": "+84901000001",
    "c-marker": "+84901000002",
    "c-ready": "+84901000003",
    "c-flaky": "+84901000004",
    "c-down": "+84901000005",
    "c-killed": "+84901000007",
    "c-chain": "+84901000008",
    "c-note": "+84901000011",
    "c-online": "+84901000012",
    "c-nophone": None,
}
# dossier's answers to for_sms (the stand-in's): the officer's note, the short name, the kind of result.
DETAILS = {
    "d-supplement": {"procedure": "Đăng ký khai sinh", "procedure_code": "HT-KS", "level": 4, "e_result": True,
                     "status": "supplement_requested", "note": "Thiếu bản sao giấy chứng sinh"},
    "d-rejected": {"procedure": "Đăng ký khai sinh", "procedure_code": "HT-KS", "level": 4, "e_result": True,
                   "status": "rejected", "note": "Trẻ đã được đăng ký khai sinh tại phường khác"},
    "d-online": {"procedure": "Đăng ký khai sinh", "procedure_code": "HT-KS", "level": 4, "e_result": True,
                 "status": "result_ready", "note": None},
}
CHAIN_HOLD_SECONDS = 1


@dataclass
class Platform:
    settings: Settings
    gateway: object
    notify: object      # notify's database
    dossier: object     # dossier's database, where the test publishes from
    notify_log: Path    # everything the notify worker logged
    processes: dict     # service -> its worker process
    env: dict           # the notify worker's environment
    log_file: object

    def kill_notify(self) -> None:
        """SIGKILL: no graceful stop, no chance to record anything it was doing."""
        process = self.processes["notify"]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def start_notify(self) -> None:
        self.processes["notify"] = _spawn("notify", self.env, self.log_file)
        wait_for(lambda: _answers_rpc(self.settings), timeout=60, message="the notify worker to answer RPC")

    def publish(self, *events: dict) -> None:
        commit(self.dossier, lambda session: None, list(events))
        relay = Relay(self.dossier, self.settings, "dossier")
        try:
            relay.publish_pending()
        finally:
            relay.close()

    def notifications_of(self, event: dict) -> list[dict]:
        return list(self.notify[store.NOTIFICATIONS].find({"source_id": event["event_id"]}))

    def settled(self, event: dict, status: str) -> dict:
        def check():
            docs = self.notifications_of(event)
            return docs[0] if docs and docs[0]["status"] == status else None

        return wait_for(check, timeout=30, message=f"the notification to be {status}")


def _spawn(argv_service: str, env: dict, log_file=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", argv_service],
                            env=env, stderr=log_file)


def _answers_rpc(settings: Settings) -> bool:
    try:  # a call notify refuses: proof that it listens, without making anything
        rpc.call(settings, "notify", "send_sms_reply", "", "reply", {}, None, "", timeout=5)
    except RemoteError:
        return True
    except rpc.RpcUnavailable:
        return False
    return False


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:       # all at once: each takes a couple of seconds to stop
        process.terminate()
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def platform(mongo_url, module_sms_gateway, tmp_path_factory):
    vhost = f"motcua-test-{uuid.uuid4().hex[:10]}"
    settings = replace(
        Settings.from_env({}), mongo_url=mongo_url, amqp_url=create_vhost(vhost),
        db_prefix=f"t{uuid.uuid4().hex[:8]}_", data_dir=tmp_path_factory.mktemp("notify-worker"),
        consumer_retry_delay_ms=200, consumer_max_attempts=3, relay_poll_seconds=0.05,
    )
    bootstrap.prepare(settings)
    env = settings_env(settings)
    env.update({
        "SMS_GATEWAY_URL": module_sms_gateway.url,
        "SMS_RETRY_WINDOW_SECONDS": str(RETRY_WINDOW_SECONDS),
        "NOTIFY_BACKOFF_BASE_SECONDS": "0.2",
        "NOTIFY_BACKOFF_MAX_SECONDS": "1",
        "NOTIFY_GATEWAY_TIMEOUT_SECONDS": "2",
        "NOTIFY_IDENTITY_TIMEOUT_SECONDS": "3",
        "NOTIFY_SEND_LEASE_SECONDS": "1",   # the floor (both timeouts and a margin) applies: 10 s
        "NOTIFY_CHAIN_HOLD_SECONDS": str(CHAIN_HOLD_SECONDS),
    })
    identity_env = {**env, "MOTCUA_WORKER_MODULE": "fake_identity", "PYTHONPATH": str(SUPPORT),
                    "FAKE_IDENTITY_CONTACTS": json.dumps({c: p for c, p in CONTACTS.items() if p})}
    dossier_env = {**env, "MOTCUA_WORKER_MODULE": "fake_dossier", "PYTHONPATH": str(SUPPORT),
                   "FAKE_DOSSIER_DETAILS": json.dumps(DETAILS)}
    notify_log = tmp_path_factory.mktemp("notify-log") / "notify.log"
    log_file = notify_log.open("wb")
    processes = {"identity": _spawn("identity", identity_env), "dossier": _spawn("dossier", dossier_env),
                 "notify": _spawn("notify", env, log_file)}
    wait_for(lambda: _answers_rpc(settings), timeout=60, message="the notify worker to answer RPC")
    client = connect(settings)
    try:
        yield Platform(settings, module_sms_gateway, client[settings.database_name("notify")],
                       client[settings.database_name("dossier")], notify_log, processes, env, log_file)
    finally:
        _stop(list(processes.values()))
        log_file.close()
        client.close()
        delete_vhost(vhost)


def submitted(citizen_id: str, code: str) -> dict:
    return new_event("DossierSubmitted", WARD, {
        "dossier_id": str(uuid.uuid4()), "receipt_code": code, "procedure_code": "KS-01", "ward_id": WARD,
        "channel": "online", "due_date": "2026-12-01", "citizen_id": citizen_id,
    })


def test_a_submitted_dossier_sends_exactly_one_sms_even_when_redelivered(platform):
    event = submitted("c-happy", "HC-261201-000001")
    platform.publish(event)
    doc = platform.settled(event, "sent")
    [request] = platform.gateway.to(CONTACTS["c-happy"])
    assert request["headers"]["Idempotency-Key"] == doc["_id"]
    body = request["body"]
    assert body["id"] == doc["_id"] and body["to"] == "+84901000001"
    assert body["text"].startswith("Hồ sơ HC-261201-000001") and "01/12/2026" in body["text"]
    assert body["encoding"] == "ucs2" and body["segments"] == domain.encode_sms(body["text"]).segments == 2
    assert doc["attempts"] == 1 and doc["to"] == "+84******001"

    # The relay publishes the same event again (a crash after the broker's confirm).
    platform.dossier[OUTBOX].update_one({"_id": event["event_id"]}, {"$set": {"status": "pending"}})
    marker = submitted("c-marker", "HC-261201-000002")
    platform.publish(marker)
    platform.settled(marker, "sent")
    time.sleep(1.5)  # a sender tick more, for anything the duplicate might have queued
    assert len(platform.gateway.to(CONTACTS["c-happy"])) == 1
    assert len(platform.notifications_of(event)) == 1


def test_received_and_result_ready_are_texted_and_other_changes_are_not(platform):
    def changed(to_status: str, from_status: str, citizen_id: str = "c-ready") -> dict:
        return new_event("DossierStatusChanged", WARD, {
            "dossier_id": "d-ready", "ward_id": WARD, "from_status": from_status, "to_status": to_status,
            "actor_id": "officer-1", "receipt_code": "HC-261201-000003", "citizen_id": citizen_id,
            "procedure_code": "KS-01"})

    received, processing = changed("received", "submitted"), changed("processing", "received")
    ready = new_event("DossierResultReady", WARD, {"dossier_id": "d-ready", "receipt_code": "HC-261201-000003",
                                                   "ward_id": WARD, "citizen_id": "c-ready"})
    anonymous = new_event("DossierResultReady", WARD, {"dossier_id": "d-anon", "receipt_code": "HC-261201-000009",
                                                       "ward_id": WARD, "citizen_id": ""})
    platform.publish(received, processing, ready, anonymous)
    platform.settled(received, "sent")
    platform.settled(ready, "sent")
    texts = [r["body"]["text"] for r in platform.gateway.to(CONTACTS["c-ready"])]
    assert len(texts) == 2
    assert any("tiếp nhận" in t for t in texts) and any("đã có kết quả" in t for t in texts)
    assert platform.notifications_of(processing) == [] and platform.notifications_of(anonymous) == []


def changed_to(to_status: str, dossier_id: str, citizen_id: str, code: str) -> dict:
    return new_event("DossierStatusChanged", WARD, {
        "dossier_id": dossier_id, "ward_id": WARD, "from_status": "received", "to_status": to_status,
        "actor_id": "officer-1", "receipt_code": code, "citizen_id": citizen_id, "procedure_code": "HT-KS"})


def test_a_supplement_request_and_a_rejection_text_the_officers_note_once(platform):
    asked = changed_to("supplement_requested", "d-supplement", "c-note", "HC-261201-000031")
    refused = changed_to("rejected", "d-rejected", "c-note", "HC-261201-000032")
    platform.publish(asked, refused)
    platform.settled(asked, "sent")
    platform.settled(refused, "sent")
    # Redelivered (a crash after the broker's confirm): nothing more is sent.
    platform.dossier[OUTBOX].update_many({"_id": {"$in": [asked["event_id"], refused["event_id"]]}},
                                         {"$set": {"status": "pending"}})
    marker = submitted("c-marker", "HC-261201-000033")
    platform.publish(marker)
    platform.settled(marker, "sent")
    time.sleep(1.5)
    texts = sorted(r["body"]["text"] for r in platform.gateway.to(CONTACTS["c-note"]))
    assert texts == [
        "Hồ sơ HC-261201-000031 (Đăng ký khai sinh) cần bổ sung: Thiếu bản sao giấy chứng sinh. "
        "Bổ sung trên Cổng dịch vụ công hoặc tại Bộ phận Một cửa phường",
        "Hồ sơ HC-261201-000032 (Đăng ký khai sinh) không được giải quyết. Lý do: Trẻ đã được đăng ký khai sinh "
        "tại phường khác. Cần hỏi thêm, xin liên hệ Bộ phận Một cửa phường",
    ]
    # The note travelled by RPC at send time: not in any event notify stored.
    assert "giấy chứng sinh" not in json.dumps([o["envelope"] for o in platform.notify[OUTBOX].find()],
                                               ensure_ascii=False)


def test_a_level_4_result_says_it_can_be_downloaded(platform):
    ready = new_event("DossierResultReady", WARD, {"dossier_id": "d-online", "receipt_code": "HC-261201-000034",
                                                   "ward_id": WARD, "citizen_id": "c-online"})
    platform.publish(ready)
    platform.settled(ready, "sent")
    [request] = platform.gateway.to(CONTACTS["c-online"])
    assert "tải bản điện tử tại Cổng dịch vụ công" in request["body"]["text"]
    assert "Bộ phận Một cửa" in request["body"]["text"]


def test_a_citizen_without_a_phone_gets_no_sms_and_nothing_breaks(platform):
    asked = changed_to("supplement_requested", "d-supplement", "c-nophone", "HC-261201-000035")
    platform.publish(asked)
    doc = platform.settled(asked, "failed")
    assert doc["reason"] == "no_contact" and doc["attempts"] == 1
    assert not any(r["body"]["text"].startswith("Hồ sơ HC-261201-000035") for r in platform.gateway.requests)


def test_a_chain_of_linked_dossiers_is_texted_once_naming_every_receipt_code(platform):
    chain = str(uuid.uuid4())
    codes = ["HC-261201-000021", "HC-261201-000022", "HC-261201-000023"]
    events = [{**e, "payload": {**e["payload"], "chain_id": chain}}
              for e in (submitted("c-chain", code) for code in codes)]
    platform.publish(*events)   # one outbox write, the chain's first dossier first

    def sent():
        doc = platform.notify[store.NOTIFICATIONS].find_one({"source_id": f"chain:{chain}"})
        return doc if doc and doc["status"] == "sent" else None

    doc = wait_for(sent, timeout=30, message="the chain's SMS to be sent")
    [request] = platform.gateway.to(CONTACTS["c-chain"])
    assert request["headers"]["Idempotency-Key"] == doc["_id"]
    text = request["body"]["text"]
    assert "liên thông" in text and all(code in text for code in codes)   # in the order they came
    assert all(platform.notifications_of(e) == [] for e in events)

    late = {**submitted("c-chain", "HC-261201-000024"), "payload": {**events[0]["payload"],
                                                                    "receipt_code": "HC-261201-000024"}}
    marker = submitted("c-marker", "HC-261201-000025")
    platform.publish(late, marker)
    platform.settled(marker, "sent")
    time.sleep(CHAIN_HOLD_SECONDS + 1.5)  # past a hold and a sender tick: the late event made nothing
    assert len(platform.gateway.to(CONTACTS["c-chain"])) == 1
    assert platform.notify[store.NOTIFICATIONS].count_documents({"citizen_id": "c-chain"}) == 1


def test_gateway_errors_are_retried_with_the_same_idempotency_key(platform):
    phone = CONTACTS["c-flaky"]
    platform.gateway.script(phone, 500, 500)
    event = submitted("c-flaky", "HC-261201-000004")
    platform.publish(event)
    doc = platform.settled(event, "sent")
    tries = platform.gateway.to(phone)
    assert [t["status"] for t in tries] == [500, 500, 202]
    assert {t["headers"]["Idempotency-Key"] for t in tries} == {doc["_id"]}
    assert doc["attempts"] == 3
    sent = [o for o in platform.notify[OUTBOX].find({"routing_key": "NotificationSent"})
            if o["envelope"]["payload"]["notification_id"] == doc["_id"]]
    assert len(sent) == 1 and sent[0]["envelope"]["payload"]["segments"] == 2


def test_when_the_gateway_stays_down_the_sms_fails_and_NotificationFailed_is_emitted(platform):
    phone = CONTACTS["c-down"]
    platform.gateway.always(phone, 503)
    event = submitted("c-down", "HC-261201-000005")
    platform.publish(event)
    doc = platform.settled(event, "failed")
    assert doc["reason"] == "gateway_unavailable"
    assert (doc["failed_at"] - doc["first_attempt_at"]).total_seconds() >= RETRY_WINDOW_SECONDS
    assert len(platform.gateway.to(phone)) == doc["attempts"] >= 3
    [failed] = [o for o in platform.notify[OUTBOX].find({"routing_key": "NotificationFailed"})
                if o["envelope"]["payload"]["notification_id"] == doc["_id"]]
    assert failed["envelope"]["payload"]["reason"] == "gateway_unavailable"
    assert phone not in json.dumps(failed["envelope"])


def test_a_citizen_identity_does_not_know_fails_with_no_contact(platform):
    event = submitted("c-nobody", "HC-261201-000006")
    platform.publish(event)
    doc = platform.settled(event, "failed")
    assert doc["reason"] == "no_contact" and doc["attempts"] == 1


def test_a_broadcast_reaches_every_member(platform):
    members = ["+84911000001", "+84911000002", "+84911000003"]
    group = {"_id": f"g-{uuid.uuid4().hex[:6]}", "ward_id": WARD, "members": members}
    broadcast_id = store.create_broadcast(platform.notify, group, "Mời các tổ trưởng họp lúc 8h thứ Hai.",
                                          "ward-admin-1", datetime.now(timezone.utc))
    wait_for(lambda: platform.notify[store.NOTIFICATIONS].count_documents(
        {"source_id": broadcast_id, "status": "sent"}) == 3, timeout=30, message="the broadcast to be sent")
    for phone in members:
        [request] = platform.gateway.to(phone)
        assert request["body"]["text"] == "Mời các tổ trưởng họp lúc 8h thứ Hai."


# ---------------------------------------------------------------- identity's replies (RPC)
def _everything_stored(db) -> str:
    return "\n".join(json.dumps(doc, default=str, ensure_ascii=False)
                     for name in db.list_collection_names() for doc in db[name].find())


def test_a_temporary_password_reply_is_sent_once_over_rpc_and_then_forgotten(platform):
    password, phone, key = "Xk7pQ2mZ9w", "+84901000099", f"dk-{uuid.uuid4().hex}"
    args = ("0901 000 099", "temporary_password", {"password": password, "valid_hours": 72}, WARD, key)
    first = rpc.call(platform.settings, "notify", "send_sms_reply", *args, timeout=15)
    again = rpc.call(platform.settings, "notify", "send_sms_reply", *args, timeout=15)
    assert again == first and set(first) == {"notification_id"}

    def sent():
        doc = platform.notify[store.NOTIFICATIONS].find_one({"_id": first["notification_id"]})
        return doc if doc and doc["status"] == "sent" else None

    doc = wait_for(sent, timeout=30, message="the reply to be sent")
    [request] = platform.gateway.to(phone)
    assert request["headers"]["Idempotency-Key"] == first["notification_id"]
    text = request["body"]["text"]
    assert f"Mật khẩu tạm thời: {password}" in text and "72 giờ" in text
    assert f"MK {password} <mật khẩu mới>" in text and "Cổng dịch vụ công" in text
    assert doc["template"] == "temporary_password" and "params" not in doc and "text" not in doc

    time.sleep(1.5)  # a sender tick more: the second call made nothing to send
    assert len(platform.gateway.to(phone)) == 1
    assert password not in _everything_stored(platform.notify)
    log = platform.notify_log.read_text(encoding="utf-8", errors="replace")
    assert first["notification_id"] in log   # the log did record the send...
    assert password not in log               # ...without the password


def test_identity_replies_without_a_secret_and_refusals(platform):
    phone = "+84901000098"
    answer = rpc.call(platform.settings, "notify", "send_sms_reply", phone, "reply",
                      {"text": "Hồ sơ HC-261201-000007: đang xử lý."}, None, f"tt-{uuid.uuid4().hex}", timeout=15)
    wait_for(lambda: platform.gateway.to(phone), timeout=30, message="the status reply")
    [request] = platform.gateway.to(phone)
    assert request["body"]["text"] == "Hồ sơ HC-261201-000007: đang xử lý."
    assert request["headers"]["Idempotency-Key"] == answer["notification_id"]

    with pytest.raises(RemoteError) as refused:
        rpc.call(platform.settings, "notify", "send_sms_reply", "0241234567", "temporary_password",
                 {"password": "Secret12345"}, WARD, f"dk-{uuid.uuid4().hex}", timeout=15)
    assert refused.value.exc_type == "ReplyRefused"
    assert "to:" in str(refused.value) and "valid_hours" in str(refused.value)
    assert "Secret12345" not in str(refused.value)


def test_sessions_revoked_is_kept_by_notify_once(platform):
    from motcua_common.revocations import COLLECTION

    revoked = new_event("SessionsRevoked", WARD, {"account_id": "off-gone-1", "ward_id": WARD,
                                                 "revoked_before": "2026-12-01T08:00:00Z",
                                                 "reason": "officer_deactivated"})
    platform.publish(revoked)
    doc = wait_for(lambda: platform.notify[COLLECTION].find_one({"_id": "off-gone-1"}), timeout=30,
                   message="SessionsRevoked recorded by notify's worker")
    assert doc["reason"] == "officer_deactivated"
    platform.dossier[OUTBOX].update_one({"_id": revoked["event_id"]}, {"$set": {"status": "pending"}})
    platform.publish()   # delivered again: still one record, processed once
    wait_for(lambda: platform.notify["processed_events"].count_documents({}) >= 1, timeout=10)
    assert platform.notify[COLLECTION].count_documents({"_id": "off-gone-1"}) == 1


# Last in the module: it kills the module's notify worker (and starts a new one).
def test_a_worker_killed_mid_send_loses_nothing_and_duplicates_nothing(platform):
    phone = "+84901000007"
    # First try: 503. Second try: the gateway accepts, but answers only after the worker is dead.
    platform.gateway.script(phone, 503, (202, 3.0))
    event = submitted("c-killed", "HC-261201-000010")
    platform.publish(event)
    wait_for(lambda: len(platform.gateway.to(phone)) >= 2, timeout=30, message="the second try to reach the gateway")
    platform.kill_notify()
    assert platform.notifications_of(event)[0]["status"] == "sending"   # killed holding its claim

    platform.start_notify()
    doc = platform.settled(event, "sent")
    tries = platform.gateway.to(phone)
    assert [t["status"] for t in tries] == [503, 202, 200]   # the last one: "already have it"
    assert {t["headers"]["Idempotency-Key"] for t in tries} == {doc["_id"]}
    assert len(platform.gateway.deliveries_to(phone)) == 1
    assert len(platform.notifications_of(event)) == 1 and doc["attempts"] == 3
    sent = [o for o in platform.notify[OUTBOX].find({"routing_key": "NotificationSent"})
            if o["envelope"]["payload"]["notification_id"] == doc["_id"]]
    assert len(sent) == 1
