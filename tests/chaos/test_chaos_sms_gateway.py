"""Fault 8: the SMS gateway failing, throttling and resetting while citizens' SMS flow.

The SMS provider is outside our system, so it is the one stand-in here: a local HTTP
gateway (a ThreadingHTTPServer speaking HTTP/1.1, as a provider's API does) that records
every request and is switched from one state to the next while traffic flows:

  up                 accepts (202), deduplicating by the client's message id as a real
                     provider does by its message reference: an id it already has is
                     answered 200 "already have it", counted as a resend, never delivered twice
  errors             answers 500 and 503 in turn
  throttled          answers 429 with Retry-After
  reset before read  resets the connection before reading the request: never accepted
  accept, then reset takes the message, then resets the connection before answering: the
                     sender cannot know whether it went through

Everything else is real: dossier's events committed through its outbox and published by
the relay to the real broker; the real notify worker (a subprocess, killed with SIGKILL
once mid-way, while the provider throttles, and started again); the real identity worker
answering the phone numbers over RPC; the real database.

Checked, like the rabbitmq/jepsen checker, per message (phone, text): every SMS that should
go out reaches the provider (lost 0); none takes effect twice, not even under two ids (two
notifications for one event would) (duplicated 0); nothing arrives that nobody asked for
(unexpected 0). And:
  * a resend (an id the provider already has) follows only a try whose outcome the sender
    could not know: accepted then reset, or accepted just before the worker was killed;
  * no request for a message reaches the provider after it was recorded sent or failed
    (numbers the provider refuses fail at once, gateway_rejected);
  * throttling is obeyed: after a 429 with Retry-After R, no request reaches the provider
    for R seconds (the provider's own clock; requests already on the wire when the 429
    left are allowed a margin), not from the worker that got the 429, nor from the one
    started after the kill.

Found and fixed in notify: a Retry-After held back only the message it answered; the
other due messages kept hitting the throttling provider (126 requests answered 429 in a 5 s
throttle, some 60 ms apart). Now the gateway is paused for every message, and the pause
is stored, so a restarted worker (or another one) obeys it too (routing.py, sender.py)."""
from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from nameko.exceptions import RemoteError

from motcua_common import rpc
from motcua_testing.chaos import DatabaseServer, wait_until
from motcua_common.events import new_event
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import commit
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env, wait_for
from motcua_identity import bootstrap as identity_bootstrap
from motcua_identity import accounts as identity_accounts
from motcua_identity.deps import build_deps as identity_deps
from motcua_notify import bootstrap as notify_bootstrap
from motcua_notify import domain
from motcua_notify.store import NOTIFICATIONS

WARD = "dn-hai-chau"
CITIZENS = 40
# The first few citizens' numbers are ones the provider refuses for good (400): their
# messages reach it but fail at once, and must never be tried again.
REFUSED = 3
EVENTS_PER_BATCH, BATCH_EVERY_SECONDS = 6, 0.5
RETRY_AFTER_SECONDS = 2
# A request already on its way when a 429 left the provider cannot have obeyed it.
ON_THE_WIRE_MARGIN_SECONDS = 0.5
# The database keeps milliseconds: a time it stored may read up to 1 ms early.
STORED_TIME_MARGIN = timedelta(milliseconds=50)
# A worker killed mid-transaction holds its writes until the server aborts the transaction
# (60 s by default, see test_chaos_consumers.py): the test's database does it after 3 s.
ABANDONED_TRANSACTION_LIFETIME = 3.0

UP, ERRORS, THROTTLED = "up", "errors", "throttled"
RESET_BEFORE_READ, ACCEPT_THEN_RESET = "reset before read", "accept, then reset"


# ---------------------------------------------------------------- the SMS provider
@dataclass(frozen=True)
class Seen:
    """One request as the provider saw it."""

    at: float              # monotonic, when it arrived (the same clock in every process)
    wall: datetime         # the same moment on the wall clock, to compare with the database
    answer: str            # "accepted", "resend", "500", "503", "429", "refused", "reset before read",
                           # "accepted, then reset", "resend, then reset"
    sms_id: str | None = None
    to: str | None = None
    text: str | None = None


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP reset, as a provider's crashing front end does."""
    handler.close_connection = True
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.rfile.close()   # the last reference to the socket but ours: close() really closes
    sock.close()


class SmsProvider:
    def __init__(self, refused_numbers: set[str]):
        self.refused = set(refused_numbers)
        self.state = UP
        self.seen: list[Seen] = []
        self.delivered: dict[str, Seen] = {}      # message id -> its first acceptance: the effect
        self.throttles: list[tuple[float, int]] = []   # (when a 429 left, its Retry-After)
        self.injected: Counter = Counter()
        self._errors = itertools.cycle(("500", "503"))
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, as a provider's API

            def handle_one_request(self):
                # Wait for the next request to start arriving: the provider's state at that
                # moment decides its fate.
                try:
                    arrived = self.rfile.peek(1)
                except OSError:
                    arrived = b""
                if not arrived:
                    self.close_connection = True
                    return
                if provider._resets_before_reading():
                    _reset(self)
                    return
                super().handle_one_request()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length).decode("utf-8"))
                assert body.get("id") == self.headers.get("Idempotency-Key"), "the message id is the key"
                answer = provider._receive(body)
                if answer is None:
                    _reset(self)
                    return
                status, headers = answer
                payload = json.dumps({"accepted": status < 300}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def start(self) -> "SmsProvider":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def switch(self, state: str) -> None:
        with self._lock:
            self.state = state

    def _note(self, answer: str, body: dict | None = None) -> Seen:
        body = body or {}
        seen = Seen(time.monotonic(), datetime.now(timezone.utc), answer, body.get("id"), body.get("to"),
                    body.get("text"))
        self.seen.append(seen)
        return seen

    def _resets_before_reading(self) -> bool:
        with self._lock:
            if self.state != RESET_BEFORE_READ:
                return False
            self._note(RESET_BEFORE_READ)
            self.injected[RESET_BEFORE_READ] += 1
            return True

    def _receive(self, body: dict) -> tuple[int, dict] | None:
        """The answer to one message: (status, headers), or None to reset the connection."""
        with self._lock:
            if self.state == ERRORS:
                status = next(self._errors)
                self._note(status, body)
                self.injected[status] += 1
                return int(status), {}
            if self.state == THROTTLED:
                seen = self._note("429", body)
                self.throttles.append((seen.at, RETRY_AFTER_SECONDS))
                self.injected["429"] += 1
                return 429, {"Retry-After": str(RETRY_AFTER_SECONDS)}
            if body.get("to") in self.refused:
                self._note("refused", body)
                return 400, {}
            resend = body["id"] in self.delivered
            answer = "resend" if resend else "accepted"
            if self.state == ACCEPT_THEN_RESET:
                answer += ", then reset"
                self.injected["accepted, then reset"] += 1
            seen = self._note(answer, body)
            if not resend:
                self.delivered[body["id"]] = seen
            if self.state == ACCEPT_THEN_RESET:
                return None
            return (200 if resend else 202), {}

    def requests_for(self, sms_id: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.sms_id == sms_id]

    @property
    def resends(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.answer.startswith("resend")]


# ---------------------------------------------------------------- the platform around notify
@pytest.fixture
def database(tmp_path):
    server = DatabaseServer(tmp_path / "db", transaction_lifetime=ABANDONED_TRANSACTION_LIFETIME).start()
    yield server
    server.stop()


class Worker:
    """`motcua worker --service S` as a subprocess, its log in a file."""

    def __init__(self, service: str, env: dict, log_path):
        self.service, self.env, self.log_path = service, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "motcua_platform.cli", "worker", "--service", self.service],
                env=self.env, stdout=log, stderr=log, start_new_session=True)
        return self

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def notify_answers(settings) -> bool:
    try:  # a call notify refuses: proof that it listens, without making anything
        rpc.call(settings, "notify", "send_sms_reply", "", "reply", {}, None, "", timeout=5)
    except RemoteError:
        return True
    except rpc.RpcUnavailable:
        return False
    return False


def identity_answers(settings, citizen_id: str) -> bool:
    try:
        return bool(rpc.call(settings, "identity", "citizen_contact", citizen_id, timeout=5))
    except rpc.RpcUnavailable:
        return False


@dataclass(frozen=True)
class Citizen:
    citizen_id: str
    phone: str


def register_citizens(settings) -> list[Citizen]:
    """Accounts in identity's database, made by identity's own registration write."""
    client = connect(settings)
    try:
        deps = identity_deps(settings, db=service_database(client, settings, "identity"))
        citizens = []
        for n in range(CITIZENS):
            phone = f"+849050{n:05d}"
            citizen_id = identity_accounts.open_account(
                deps, national_id=f"048090{n:06d}", full_name="Nguyễn Văn An", date_of_birth=date(1990, 5, 1),
                phone=phone, ward_id=WARD, password="mat-khau-tam-2026", channel="counter", temporary=False)
            citizens.append(Citizen(citizen_id, phone))
        return citizens
    finally:
        client.close()


class DossierEvents:
    """dossier's side of the story: a batch of events every half second, each asking for one
    SMS (submitted, received, result ready, in turn), committed to dossier's outbox and
    published by the relay, until stopped."""

    def __init__(self, settings, citizens: list[Citizen]):
        self.settings, self.citizens = settings, citizens
        self.client = connect(settings)
        self.db = service_database(self.client, settings, "dossier")
        self.published: list[tuple[dict, Citizen]] = []
        self.due_date = (datetime.now(timezone.utc).date() + timedelta(days=10)).isoformat()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _event(self, n: int) -> tuple[dict, Citizen]:
        citizen = self.citizens[n % len(self.citizens)]
        common = {"dossier_id": str(uuid.uuid4()), "receipt_code": f"HC-{n:06d}", "ward_id": WARD,
                  "citizen_id": citizen.citizen_id, "procedure_code": "KS-01"}
        kind = n % 3
        if kind == 0:
            event = new_event("DossierSubmitted", WARD, {**common, "channel": "online", "due_date": self.due_date})
        elif kind == 1:
            event = new_event("DossierStatusChanged", WARD, {**common, "from_status": "submitted",
                                                             "to_status": "received", "actor_id": "officer-lan"})
        else:
            event = new_event("DossierResultReady", WARD, common)
        return event, citizen

    def _run(self) -> None:
        relay = Relay(self.db, self.settings, "dossier")
        try:
            while not self._stop.is_set():
                batch = [self._event(len(self.published) + i) for i in range(EVENTS_PER_BATCH)]
                commit(self.db, lambda session: None, [event for event, _ in batch])
                self.published.extend(batch)
                relay.publish_pending()
                self._stop.wait(BATCH_EVERY_SECONDS)
            while relay.publish_pending():
                pass
        except Exception as exc:  # reported by stop(): the load must not die unseen
            self.error = exc
        finally:
            relay.close()

    def start(self) -> "DossierEvents":
        self._thread.start()
        return self

    def halt(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(60)
            self.client.close()

    def stop(self) -> None:
        """Halt, and fail the test if publishing did not go well."""
        self.halt()
        assert not self._thread.is_alive(), "publishing hung"
        assert self.error is None, f"publishing failed: {self.error!r}"


def expected_sms(event: dict, citizen: Citizen) -> tuple[str, str]:
    """The message an event should put on the citizen's phone: (phone, text)."""
    [intent] = domain.intents_for(event["type"], event["payload"])
    return citizen.phone, domain.encode_sms(domain.render(intent.template, intent.params)).text


# ---------------------------------------------------------------- fault 8
def test_sms_gateway_failing_throttling_and_resetting_under_load(broker_settings, database, checker, tmp_path):
    check = checker("8. SMS gateway failing (500/503), throttling (429 Retry-After), resetting connections",
                    "dossier events asking for SMS")
    settings = replace(broker_settings, mongo_url=database.url)
    identity_bootstrap.prepare(settings)
    notify_bootstrap.prepare(settings)
    citizens = register_citizens(settings)
    refused = {c.phone for c in citizens[:REFUSED]}
    provider = SmsProvider(refused).start()

    env = settings_env(settings)
    env.update({
        "SMS_GATEWAY_URL": provider.url,
        "SMS_RETRY_WINDOW_SECONDS": "300",      # far longer than any fault here: none may fail for it
        "NOTIFY_BACKOFF_BASE_SECONDS": "0.2",
        "NOTIFY_BACKOFF_MAX_SECONDS": "1",
        "NOTIFY_GATEWAY_TIMEOUT_SECONDS": "2",
        "NOTIFY_IDENTITY_TIMEOUT_SECONDS": "3",  # the send lease is their sum and 5 s: 10 s
    })
    identity = Worker("identity", settings_env(settings), tmp_path / "identity.log").start()
    notify = Worker("notify", env, tmp_path / "notify.log").start()
    client = connect(settings)
    notifications = service_database(client, settings, "notify")[NOTIFICATIONS]
    events = None
    try:
        wait_for(lambda: identity_answers(settings, citizens[0].citizen_id), timeout=60,
                 message="the identity worker to answer RPC")
        wait_for(lambda: notify_answers(settings), timeout=60, message="the notify worker to answer RPC")

        events = DossierEvents(settings, citizens).start()
        wait_for(lambda: events.published, timeout=30, message="the first dossier events")
        for state, seconds in ((UP, 2.0), (ERRORS, 4.0), (UP, 1.5), (THROTTLED, 2.5)):
            provider.switch(state)
            time.sleep(seconds)
        # Mid-way, while events keep coming and the provider throttles: the worker dies with
        # messages in its hands, and the one started again must still obey the Retry-After.
        killed_at = datetime.now(timezone.utc)
        notify.kill9()
        notify.start()
        wait_for(lambda: notify_answers(settings), timeout=60, message="the restarted notify worker")
        for state, seconds in ((THROTTLED, 2.5), (UP, 1.5), (RESET_BEFORE_READ, 3.0), (UP, 1.5),
                               (ACCEPT_THEN_RESET, 3.0), (UP, 0.0)):
            provider.switch(state)
            time.sleep(seconds)
        events.stop()

        expected = len(events.published)

        def settled() -> bool:
            statuses = Counter(d["status"] for d in notifications.find({}, {"status": 1}))
            return sum(statuses.values()) == expected and set(statuses) <= {domain.SENT, domain.FAILED}

        done = wait_until(settled, timeout=60, interval=0.5)
        time.sleep(2.0)   # a few sender ticks more, for anything sent again after settling
    finally:
        if events is not None:
            events.halt()
        notify.stop()
        identity.stop()
        provider.stop()

    # ------------------------------------------------------------ the checker
    for event, citizen in events.published:
        key = expected_sms(event, citizen)
        check.ack(key) if citizen.phone not in refused else check.attempt(key)
    for seen in provider.delivered.values():
        check.observe((seen.to, seen.text))
    check.deliveries = len(provider.seen)
    injected = ", ".join(f"{name} ×{provider.injected[name]}" for name in
                         ("500", "503", "429", RESET_BEFORE_READ, "accepted, then reset"))
    resends = provider.resends
    check.load = (f"{len(events.published)} dossier events asking for SMS to {CITIZENS} phones "
                  f"({REFUSED} refused by the provider), the notify worker killed (kill -9) once while throttled; "
                  f"the gateway injected {injected}; {len(provider.delivered)} delivered by unique id, "
                  f"{len(resends)} resends of an id it had")

    docs = {d["_id"]: d for d in notifications.find()}
    client.close()
    assert done, f"not every notification settled: {Counter(d['status'] for d in docs.values())}"
    assert not check.lost, f"lost: {sorted(check.lost)[:3]}"
    assert not check.duplicated, f"duplicated effects: {sorted(check.duplicated)[:3]}"
    assert not check.unexpected, f"unexpected: {sorted(check.unexpected)[:3]}"
    for fault in ("500", "503", "429", RESET_BEFORE_READ, "accepted, then reset"):
        assert provider.injected[fault], f"the gateway never injected {fault}: the load missed that phase"

    # Only the refused numbers fail, at once; everything else is sent.
    for doc in docs.values():
        if doc.get("phone") is None and doc["status"] == domain.FAILED:
            assert doc["reason"] == domain.GATEWAY_REJECTED, doc
    failed = [d for d in docs.values() if d["status"] == domain.FAILED]
    assert len(failed) == sum(1 for _, c in events.published if c.phone in refused)

    # Nothing reaches the provider for a message once it is recorded sent or failed.
    late = []
    for doc in docs.values():
        settled_at = doc.get("sent_at") or doc.get("failed_at")
        late += [(doc["_id"], s.answer) for s in provider.requests_for(doc["_id"])
                 if s.wall > settled_at + STORED_TIME_MARGIN]
    assert not late, f"requests after the message was settled: {late[:5]}"

    # A resend follows only a try whose outcome the sender could not know.
    unexplained = []
    for resend in resends:
        before = [s for s in provider.requests_for(resend.sms_id) if s.at < resend.at]
        ambiguous = any(s.answer.endswith("then reset") for s in before)
        killed_holding_it = any(s.answer in ("accepted", "resend") and s.wall <= killed_at for s in before) \
            and resend.wall > killed_at
        if not (ambiguous or killed_holding_it):
            unexplained.append((resend.sms_id, [s.answer for s in before]))
    assert not unexplained, f"ids sent again after a clear answer: {unexplained[:5]}"

    # Throttling obeyed: nothing arrives while a Retry-After runs (less the on-the-wire margin).
    early = {s: round(s.at - sent, 2) for sent, wait in provider.throttles for s in provider.seen
             if sent + ON_THE_WIRE_MARGIN_SECONDS < s.at < sent + wait}
    assert not early, (f"{len(early)} requests before Retry-After ({RETRY_AFTER_SECONDS} s) had passed "
                       f"(seconds after a 429, answer): {[(t, s.answer) for s, t in list(early.items())[:8]]}")
