"""From event to SMS in one process, against SecantusDB and a local recording gateway:
intake once per event, atomic claims with a lease, retries with the same Idempotency-Key,
the retry window, terminal failures, and the events stored with each outcome."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from motcua_common.events import new_event, parse_envelope
from motcua_common.outbox import OUTBOX
from motcua_notify import bootstrap, domain, store
from motcua_notify.gateways import ConsoleGateway, HttpGateway
from motcua_notify.routing import gateway_for
from motcua_common.clock import FixedClock, SystemClock
from motcua_common.config import Settings
from motcua_notify import intake
from motcua_notify.deps import build_deps
from motcua_notify.sender import ContactUnavailable, Sender, SendOptions

PHONE = "+84901234567"
WARD = "dn-hai-chau"


class Clock:
    # Starts at the real time (events are stored with it), to the millisecond the
    # database keeps; then moves only when told.
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


@pytest.fixture
def clock():
    return Clock()


OPTIONS = SendOptions(retry=domain.RetryPolicy(window_seconds=600, base_seconds=5, max_seconds=120),
                      gateway_timeout_seconds=2, lease_seconds=60)


def accept_event(db, event, now=None, chain_hold_seconds=2.0):
    """intake.accept_event on this database, with the clock stopped at `now` (when given)."""
    deps = build_deps(Settings.from_env({}), db=db, verifier=None,
                      clock=FixedClock(now) if now else SystemClock(),
                      options=SendOptions(chain_hold_seconds=chain_hold_seconds))
    return intake.accept_event(deps, None, event)


def make_sender(db, gateway, clock, contacts=None, options=OPTIONS):
    contacts = contacts or {"c1": PHONE}.get
    return Sender(db, gateway, lambda cid: _contact(contacts(cid), cid), options, clock=clock, rand=lambda: 1.0)


def _contact(phone, citizen_id):
    return None if phone is None else {"citizen_id": citizen_id, "phone": phone, "phone_last4": phone[-4:],
                                       "ward_id": WARD}


def submitted(citizen_id="c1", code="HC-260302-000001"):
    return parse_envelope(new_event("DossierSubmitted", WARD, {
        "dossier_id": str(uuid.uuid4()), "receipt_code": code, "procedure_code": "KS-01", "ward_id": WARD,
        "channel": "online", "due_date": "2026-03-09", "citizen_id": citizen_id,
    }))


def outbox_events(db, event_type):
    return [doc["envelope"] for doc in db[OUTBOX].find({"routing_key": event_type})]


def only_notification(db):
    docs = list(db[store.NOTIFICATIONS].find())
    assert len(docs) == 1
    return docs[0]


# ---------------------------------------------------------------- intake
def test_an_event_makes_one_pending_notification_however_often_it_arrives(db):
    event = submitted()
    assert accept_event(db, event) == "processed"
    assert accept_event(db, event) == "duplicate"
    # Even with the processed mark gone (expired), the unique key holds.
    db.processed_events.delete_many({})
    assert accept_event(db, event) == "duplicate"
    doc = only_notification(db)
    assert doc["status"] == "pending" and doc["template"] == "dossier_submitted" and doc["citizen_id"] == "c1"
    assert doc["source_id"] == event.event_id and doc["ward_id"] == WARD
    assert "phone" not in doc or doc["phone"] is None


def chained(chain_id, code, due_date="2026-03-09", citizen_id="c1"):
    return parse_envelope(new_event("DossierSubmitted", WARD, {
        "dossier_id": str(uuid.uuid4()), "receipt_code": code, "procedure_code": "KS-01", "ward_id": WARD,
        "channel": "counter", "due_date": due_date, "citizen_id": citizen_id, "chain_id": chain_id,
    }))


def test_a_chain_of_dossiers_makes_one_sms_naming_every_code_and_late_events_add_nothing(db, clock, sms_gateway):
    chain = str(uuid.uuid4())
    first, second, third = (chained(chain, "HC-260302-000001"), chained(chain, "HC-260302-000002", "2026-03-16"),
                            chained(chain, "HC-260302-000003"))
    assert accept_event(db, first, now=clock(), chain_hold_seconds=2) == "processed"
    assert accept_event(db, second, now=clock(), chain_hold_seconds=2) == "processed"
    assert accept_event(db, second, now=clock(), chain_hold_seconds=2) == "duplicate"
    doc = only_notification(db)
    assert doc["template"] == "dossier_chain_submitted" and doc["source_id"] == f"chain:{chain}"
    assert doc["params"] == {"receipt_codes": ["HC-260302-000001", "HC-260302-000002"], "due_date": "2026-03-16"}

    sender = make_sender(db, HttpGateway(sms_gateway.url, 2), clock)
    assert sender.send_due() == 0            # held for the chain's other events
    clock.advance(2)
    assert sender.send_due() == 1
    [request] = sms_gateway.requests
    text = request["body"]["text"]
    assert "HC-260302-000001, HC-260302-000002" in text and "16/03/2026" in text

    assert accept_event(db, third, now=clock(), chain_hold_seconds=2) == "processed"   # too late: adds nothing
    clock.advance(60)
    assert sender.send_due() == 0 and len(sms_gateway.requests) == 1
    assert only_notification(db)["params"]["receipt_codes"] == ["HC-260302-000001", "HC-260302-000002"]


def test_a_chain_s_events_racing_each_other_still_make_one_sms_with_both_codes(db, clock):
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(5):
        chain = str(uuid.uuid4())
        events = [chained(chain, f"HC-260302-00010{i}") for i in range(4)]
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(lambda e: accept_event(db, e, now=clock()), events))
        assert outcomes == ["processed"] * 4
        [doc] = db[store.NOTIFICATIONS].find({"source_id": f"chain:{chain}"})
        assert sorted(doc["params"]["receipt_codes"]) == [e.payload["receipt_code"] for e in events]


def test_events_about_nobody_or_needing_no_sms_make_no_notification(db):
    assert accept_event(db, submitted(citizen_id="")) == "skipped"
    assert db.processed_events.count_documents({}) == 0
    registered = parse_envelope(new_event("CitizenRegistered", WARD, {
        "citizen_id": "c9", "ward_id": WARD, "channel": "web", "age_band": "18-60"}))
    assert accept_event(db, registered) == "processed"
    processing = parse_envelope(new_event("DossierStatusChanged", WARD, {
        "dossier_id": "d1", "ward_id": WARD, "from_status": "received", "to_status": "processing",
        "actor_id": "o1", "receipt_code": "R1", "citizen_id": "c1"}))
    assert accept_event(db, processing) == "processed"
    assert db[store.NOTIFICATIONS].count_documents({}) == 0


# ---------------------------------------------------------------- sending
def test_a_due_sms_goes_to_the_gateway_once_and_NotificationSent_is_stored(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)
    sender = make_sender(db, HttpGateway(sms_gateway.url, 2), clock)
    assert sender.send_due() == 1
    assert sender.send_due() == 0
    [request] = sms_gateway.requests
    doc = only_notification(db)
    assert request["headers"]["Idempotency-Key"] == doc["_id"]
    body = request["body"]
    assert body == {"id": doc["_id"], "to": PHONE, "text": body["text"], "encoding": "ucs2", "segments": 2}
    assert body["text"].startswith("Hồ sơ HC-260302-000001") and "09/03/2026" in body["text"]
    assert body["segments"] == domain.encode_sms(body["text"]).segments
    assert doc["status"] == "sent" and doc["attempts"] == 1 and doc["to"] == "+84******567"
    assert doc["sent_at"] == clock.now and "claim" not in doc
    [sent] = outbox_events(db, "NotificationSent")
    assert sent["payload"] == {"notification_id": doc["_id"], "ward_id": WARD, "channel": "sms",
                               "template": "dossier_submitted", "segments": 2}
    assert PHONE not in str(sent) and "901234567" not in str(sent)


def test_unaccented_sends_gsm7(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)
    options = SendOptions(retry=OPTIONS.retry, unaccented=True)
    make_sender(db, HttpGateway(sms_gateway.url, 2), clock, options=options).send_due()
    body = sms_gateway.requests[0]["body"]
    assert body["encoding"] == "gsm7" and body["segments"] == 1 and body["text"].startswith("Ho so HC-")


def test_gateway_errors_are_retried_with_backoff_and_the_same_key(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)
    sms_gateway.script(PHONE, 500, 429)
    sender = make_sender(db, HttpGateway(sms_gateway.url, 2), clock)
    assert sender.send_due() == 1
    doc = only_notification(db)
    assert doc["status"] == "pending" and doc["last_error"] == "HTTP 500"
    assert doc["next_attempt_at"] == clock.now + timedelta(seconds=5)
    assert sender.send_due() == 0                       # not due yet
    clock.advance(5)
    sender.send_due()
    assert only_notification(db)["next_attempt_at"] == clock.now + timedelta(seconds=10)
    clock.advance(10)
    sender.send_due()
    doc = only_notification(db)
    assert doc["status"] == "sent" and doc["attempts"] == 3
    keys = {r["headers"]["Idempotency-Key"] for r in sms_gateway.requests}
    assert len(sms_gateway.requests) == 3 and keys == {doc["_id"]}
    assert len(outbox_events(db, "NotificationSent")) == 1


def test_a_timeout_or_a_dead_gateway_is_retried(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)
    sms_gateway.delay_seconds = 1.0
    make_sender(db, HttpGateway(sms_gateway.url, 0.2), clock).send_due()
    assert only_notification(db)["last_error"] == "timeout"
    clock.advance(60)
    make_sender(db, HttpGateway("http://127.0.0.1:9/sms", 0.5), clock).send_due()
    doc = only_notification(db)
    assert doc["status"] == "pending" and doc["last_error"].startswith("unreachable")


def test_when_the_window_is_spent_the_sms_fails_and_NotificationFailed_is_stored(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)
    sms_gateway.always(PHONE, 503)
    sender = make_sender(db, HttpGateway(sms_gateway.url, 2), clock)
    start = clock.now
    while only_notification(db)["status"] != "failed":
        sender.send_due()
        clock.advance(1)
        assert clock.now - start < timedelta(seconds=700)
    doc = only_notification(db)
    assert doc["reason"] == "gateway_unavailable" and doc["last_error"] == "HTTP 503"
    assert doc["failed_at"] - doc["first_attempt_at"] >= timedelta(seconds=600)
    assert len(sms_gateway.requests) == doc["attempts"]
    [failed] = outbox_events(db, "NotificationFailed")
    assert failed["payload"] == {"notification_id": doc["_id"], "ward_id": WARD, "channel": "sms",
                                 "template": "dossier_submitted", "reason": "gateway_unavailable"}
    assert outbox_events(db, "NotificationSent") == []


def test_a_refusal_fails_at_once(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)
    sms_gateway.script(PHONE, 400)
    make_sender(db, HttpGateway(sms_gateway.url, 2), clock).send_due()
    doc = only_notification(db)
    assert doc["status"] == "failed" and doc["reason"] == "gateway_rejected" and doc["attempts"] == 1
    assert len(outbox_events(db, "NotificationFailed")) == 1


def test_a_citizen_without_contact_fails_without_touching_the_gateway(db, clock, sms_gateway):
    accept_event(db, submitted(citizen_id="c-unknown"), clock.now)
    make_sender(db, HttpGateway(sms_gateway.url, 2), clock).send_due()
    doc = only_notification(db)
    assert doc["status"] == "failed" and doc["reason"] == "no_contact"
    assert sms_gateway.requests == []


def test_identity_unavailable_is_retried_then_fails(db, clock, sms_gateway):
    accept_event(db, submitted(), clock.now)

    def silent(_citizen_id):
        raise ContactUnavailable("no answer in 5 s")

    sender = Sender(db, HttpGateway(sms_gateway.url, 2), silent, OPTIONS, clock=clock, rand=lambda: 1.0)
    sender.send_due()
    assert only_notification(db)["status"] == "pending"
    clock.advance(601)
    sender.send_due()
    doc = only_notification(db)
    assert doc["status"] == "failed" and doc["reason"] == "identity_unavailable"
    assert sms_gateway.requests == []


def test_a_missing_template_variable_fails_the_notification(db, clock, sms_gateway):
    db[store.NOTIFICATIONS].insert_one(store.new_notification(
        template="dossier_submitted", params={"receipt_code": "R1", "due_date": "2026-03-09"},
        ward_id=WARD, source_id="e1", citizen_id="c1", now=clock.now))
    make_sender(db, HttpGateway(sms_gateway.url, 2), clock).send_due()
    doc = only_notification(db)
    assert doc["status"] == "failed" and doc["reason"] == "template_error"
    assert sms_gateway.requests == []


# ---------------------------------------------------------------- claims and leases
def test_a_claim_is_exclusive_and_a_crashed_sender_releases_it_after_the_lease(db, clock):
    db[store.NOTIFICATIONS].insert_one(store.new_notification(
        template="broadcast", params={"text": "Họp"}, ward_id=WARD, source_id="b1", phone=PHONE, now=clock.now))
    first = store.claim_due(db, clock.now, 60)
    assert first["status"] == "sending" and first["attempts"] == 1
    assert store.claim_due(db, clock.now, 60) is None
    clock.advance(59)
    assert store.claim_due(db, clock.now, 60) is None
    clock.advance(1)
    second = store.claim_due(db, clock.now, 60)            # the first sender died mid-send
    assert second["_id"] == first["_id"] and second["attempts"] == 2
    assert second["first_attempt_at"] == first["first_attempt_at"]
    body = domain.encode_sms("Họp")
    assert store.record_sent(db, first, clock.now, "x", body) is False   # too late: not its claim
    assert store.record_sent(db, second, clock.now, "x", body) is True
    assert len(outbox_events(db, "NotificationSent")) == 1

def test_a_claim_walks_the_due_index_not_every_notification_ever_sent(db, clock):
    # Senders claim twice a second all day while sent notifications pile up: a scan here
    # took a fifth of the embedded database in a 50-ward day (bench/RESULTS.md), and so did
    # findAndModify, which that database answers by reading the whole collection.
    from motcua_testing.fixtures import collection_scans, recording_client

    db[store.NOTIFICATIONS].insert_many([
        {**store.new_notification(template="broadcast", params={"text": "Họp"}, ward_id=WARD, source_id=f"s{i}",
                                  phone=PHONE, now=clock.now), "status": "sent"} for i in range(20)])
    db[store.NOTIFICATIONS].insert_one(store.new_notification(
        template="broadcast", params={"text": "Họp"}, ward_id=WARD, source_id="due", phone=PHONE, now=clock.now))
    claimed = []
    assert collection_scans(db, lambda twin: claimed.append(store.claim_due(twin, clock.now, 60))) == []
    assert claimed[0]["source_id"] == "due" and claimed[0]["status"] == "sending"
    clock.advance(61)  # its lease ran out: due again
    with recording_client(db) as (twin, commands):
        assert store.claim_due(twin, clock.now, 60)["attempts"] == 2
    assert [c for c in commands if "findAndModify" in c] == []


def test_group_members_are_texted_on_the_number_stored(db, clock, sms_gateway):
    db[store.NOTIFICATIONS].insert_one(store.new_notification(
        template="broadcast", params={"text": "Mời tổ trưởng họp 8h"}, ward_id=WARD, source_id="b1",
        phone="+84362222333", now=clock.now))

    def no_lookup(_citizen_id):
        raise AssertionError("group members are not looked up")

    Sender(db, HttpGateway(sms_gateway.url, 2), no_lookup, OPTIONS, clock=clock).send_due()
    assert sms_gateway.requests[0]["body"]["to"] == "+84362222333"
    assert sms_gateway.requests[0]["body"]["text"] == "Mời tổ trưởng họp 8h"
    assert only_notification(db)["status"] == "sent"


# ---------------------------------------------------------------- the console gateway
def test_without_a_gateway_the_sms_is_logged_without_the_phone_and_marked_sent(db, clock, caplog):
    accept_event(db, submitted(), clock.now)
    gateway = gateway_for(None)
    assert isinstance(gateway, ConsoleGateway)
    with caplog.at_level(logging.INFO):
        make_sender(db, gateway, clock).send_due()
    doc = only_notification(db)
    assert doc["status"] == "sent" and doc["text"].startswith("Hồ sơ HC-260302-000001")
    line = next(r for r in caplog.records if r.name == "motcua_notify.gateways")
    assert line.notification_id == doc["_id"] and line.ward_id == WARD
    assert line.template == "dossier_submitted" and line.segments == 2
    assert all("901234567" not in r.getMessage() and "901234567" not in str(r.__dict__) for r in caplog.records)


def test_only_http_gateway_urls_are_accepted():
    assert isinstance(gateway_for("https://sms.example.vn/send"), HttpGateway)
    with pytest.raises(ValueError):
        gateway_for("smpp://telco:2775")


def test_senders_side_by_side_never_send_one_message_twice(db, clock, sms_gateway):
    from concurrent.futures import ThreadPoolExecutor

    members = [f"+8490{n:07d}" for n in range(24)]
    group = {"_id": "g1", "ward_id": WARD, "members": members}
    store.create_broadcast(db, group, "Mời tổ trưởng họp lúc 8h", "ward-admin-1", clock.now)
    senders = [make_sender(db, HttpGateway(sms_gateway.url, 2), clock) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        taken = sum(pool.map(lambda sender: sender.send_due(), senders))
    assert taken == 24
    keys = [r["headers"]["Idempotency-Key"] for r in sms_gateway.requests]
    assert len(keys) == len(set(keys)) == 24
    assert sorted(r["body"]["to"] for r in sms_gateway.requests) == members
    assert db[store.NOTIFICATIONS].count_documents({"status": "sent"}) == 24


def test_an_unexpected_error_while_sending_is_retried_within_the_window_too(db, clock):
    accept_event(db, submitted(), clock.now)

    class BrokenGateway:
        def send(self, sms):
            raise RuntimeError("bug")

    sender = make_sender(db, BrokenGateway(), clock)
    sender.send_due()
    doc = only_notification(db)
    assert doc["status"] == "pending" and doc["last_error"] == "RuntimeError"
    clock.advance(601)
    sender.send_due()
    doc = only_notification(db)
    assert doc["status"] == "failed" and doc["reason"] == "internal_error"
