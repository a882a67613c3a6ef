"""Officers at counters (issue 21), against the SecantusDB server: an officer holds a
counter before calling and serving there, a second officer is refused while the first is
there, the ward's admin frees a counter, a serve is credited to the holder, and one counter
never has two tickets called — not even by two requests at the same moment."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from motcua_common.clock import FixedClock
from motcua_common.outbox import OUTBOX
from motcua_queue import counter_sessions, domain
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare

WARD = "dn-hai-chau"
BASE = "/queue/api/v1"
SESSION = f"{BASE}/wards/{WARD}/counters/quay-1/session"


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc))  # 09:00 in Đà Nẵng, a Monday


@pytest.fixture
def app(settings, verifier, clock):
    prepare(settings, demo=True)
    app = create_app(settings, verifier=verifier, clock=clock)
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def lan(token):
    return token("officer", WARD, subject="officer-lan")


@pytest.fixture
def minh(token):
    return token("officer", WARD, subject="officer-minh")


def issue(client, token, service_code="A"):
    answer = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": service_code},
                         headers=token("kiosk", WARD, subject="kiosk-1"))
    assert answer.status_code == 201
    return answer.get_json()


def call(client, headers, counter_id="quay-1"):
    return client.post(f"{BASE}/wards/{WARD}/counters/{counter_id}/call-next", headers=headers)


def act(client, headers, ticket_id, action):
    return client.post(f"{BASE}/tickets/{ticket_id}/actions", json={"action": action}, headers=headers)


def test_one_officer_holds_a_counter_until_they_leave_or_the_admin_frees_it(client, lan, minh, token, clock):
    assert client.post(SESSION, headers=lan).get_json()["officer_id"] == "officer-lan"
    taken = client.post(SESSION, headers=minh)
    assert taken.status_code == 409 and taken.get_json()["code"] == "counter_taken"
    assert call(client, minh).get_json()["code"] == "counter_taken"
    refused = client.delete(SESSION, headers=minh)
    assert refused.status_code == 403 and refused.get_json()["code"] == "counter_not_held"

    assert client.delete(SESSION, headers=lan).status_code == 204          # Lan ends her session
    assert client.post(SESSION, headers=minh).status_code == 200
    assert client.delete(SESSION, headers=token("ward_admin", WARD, subject="admin-hc")).status_code == 204  # freed
    assert client.post(SESSION, headers=lan).status_code == 200
    clock.advance(seconds=counter_sessions.HOLDER_IDLE_SECONDS + 1)       # Lan has gone without a word
    assert client.post(SESSION, headers=minh).status_code == 200


def test_only_the_holder_acts_on_the_counters_ticket_and_is_credited(client, app, lan, minh, token):
    ticket = issue(client, token)
    called = call(client, lan)                      # calling at a free counter takes it
    assert called.status_code == 200 and called.get_json()["ticket_id"] == ticket["ticket_id"]
    for action in ("serve", "recall", "skip"):
        refused = act(client, minh, ticket["ticket_id"], action)
        assert refused.status_code == 403 and refused.get_json()["code"] == "counter_not_held"
    assert act(client, lan, ticket["ticket_id"], "serve").status_code == 200
    [served] = [d["envelope"] for d in app.extensions["motcua"].db[OUTBOX].find({"routing_key": "TicketServed"})]
    assert served["payload"]["officer_id"] == "officer-lan"   # the rating of it is hers


def test_a_second_click_answers_the_ticket_already_called(client, app, lan, token):
    first, second = issue(client, token), issue(client, token)
    called = call(client, lan).get_json()
    again = call(client, lan).get_json()
    assert called["ticket_id"] == again["ticket_id"] == first["ticket_id"] and again["already_called"] is True
    assert app.extensions["motcua"].db[OUTBOX].count_documents({"routing_key": "TicketCalled"}) == 1
    assert act(client, lan, first["ticket_id"], "serve").status_code == 200
    assert call(client, lan).get_json()["ticket_id"] == second["ticket_id"]


def test_two_clicks_at_the_same_moment_call_one_ticket(app, lan, token):
    """The call lock is one find-and-modify on the counter's record: of requests racing at
    one counter, one calls and the others get that ticket or 409 call_in_progress."""
    client = app.test_client()
    for _ in range(4):
        issue(client, token)
    client.post(SESSION, headers=lan)
    start, answers = threading.Barrier(4), []

    def click():
        mine = app.test_client()
        start.wait()
        response = call(mine, lan)
        answers.append((response.status_code, (response.get_json() or {}).get("ticket_id"),
                        (response.get_json() or {}).get("code")))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    tickets = app.extensions["motcua"].db["tickets"]
    assert tickets.count_documents({"counter_id": "quay-1", "status": domain.CALLED}) == 1
    [ticket_id] = {t for status, t, _ in answers if status == 200}
    assert all((status, code) in ((200, None), (409, "call_in_progress")) for status, _, code in answers), answers
    assert tickets.find_one({"_id": ticket_id})["status"] == domain.CALLED


def test_the_wards_admin_page_shows_who_holds_a_counter_and_frees_it(client, lan, minh, token):
    import re

    from motcua_common.web_session import SESSION_COOKIE

    client.post(SESSION, headers=lan)
    jwt = token("ward_admin", WARD, subject="admin-hc")["Authorization"].split(" ", 1)[1]
    client.set_cookie(SESSION_COOKIE, jwt, path="/")
    page = client.get(f"/queue/admin/{WARD}").get_data(as_text=True)
    holder = re.search(r'data-counter-holder="quay-1">(.*?)</div>', page, re.S).group(1)
    assert "Giải phóng quầy" in holder
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    freed = client.post(f"/queue/admin/{WARD}/counters/quay-1/free", data={"csrf_token": csrf})
    assert freed.status_code == 303 and "saved=counter_freed" in freed.headers["Location"]
    assert client.post(SESSION, headers=minh).status_code == 200


def test_an_idle_counter_calls_by_reads_alone_and_is_renewed_now_and_then(client, app, lan, minh, clock):
    """Calling with nobody waiting (most calls of a quiet hour) writes nothing while the
    holder was seen lately; a call with a ticket takes the lock as before; after
    SEEN_LATELY_SECONDS a call renews the holder, long before they would count as gone."""
    sessions = app.extensions["motcua"].db[counter_sessions.SESSIONS]
    assert client.post(SESSION, headers=lan).status_code == 200
    before = sessions.find_one({"_id": f"{WARD}:quay-1"})
    clock.advance(seconds=60)
    assert call(client, lan).status_code == 204
    assert sessions.find_one({"_id": f"{WARD}:quay-1"}) == before          # not written
    assert call(client, minh).get_json()["code"] == "counter_taken"         # still Lan's

    clock.advance(seconds=counter_sessions.SEEN_LATELY_SECONDS + 1)
    assert call(client, lan).status_code == 204
    renewed = sessions.find_one({"_id": f"{WARD}:quay-1"})
    assert renewed["last_seen_at"] > before["last_seen_at"] and renewed["call_lock"] is None


def test_a_lately_held_counter_still_calls_one_ticket_and_answers_it_again(client, lan, token, clock):
    assert client.post(SESSION, headers=lan).status_code == 200
    waiting = issue(client, token)
    called = call(client, lan).get_json()
    assert called["ticket_id"] == waiting["ticket_id"] and "already_called" not in called
    again = call(client, lan).get_json()
    assert again["ticket_id"] == waiting["ticket_id"] and again["already_called"] is True
    assert act(client, lan, waiting["ticket_id"], "serve").status_code == 200
    assert call(client, lan).status_code == 204


def test_an_idle_counters_call_sends_the_database_reads_only(settings, verifier, clock, lan):
    """What the province's day showed most of: a counter calling with nobody waiting. Its
    record, its open call and the ward's line are read; nothing is written."""
    from pymongo import monitoring

    class Recorder(monitoring.CommandListener):
        recording, names = False, []

        def started(self, event):
            if self.recording and event.database_name == settings.database_name("queue"):
                self.names.append(event.command_name)

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    recorder = Recorder()
    monitoring.register(recorder)  # for clients made from now on: this test's app
    prepare(settings, demo=True)
    app = create_app(settings, verifier=verifier, clock=clock)
    try:
        client = app.test_client()
        assert client.post(SESSION, headers=lan).status_code == 200
        assert call(client, lan).status_code == 204  # reference data remembered from here
        recorder.recording = True
        assert call(client, lan).status_code == 204
        recorder.recording = False
        assert recorder.names == ["find", "find", "find"], recorder.names
    finally:
        recorder.recording = False
        app.extensions["motcua"].db.client.close()
