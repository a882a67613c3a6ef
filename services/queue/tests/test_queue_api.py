"""The queue API against the SecantusDB server: reference data, issuing (who may, numbers,
concurrency, idempotency), calling, officer actions, the board and the metrics."""
from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from motcua_common.clock import FixedClock
from motcua_common.outbox import OUTBOX
from motcua_queue import tickets
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare

WARD, OTHER_WARD = "dn-hai-chau", "hn-ba-dinh"
BASE = "/queue/api/v1"


@pytest.fixture
def clock():
    """The API's clock, moved by hand: 09:00 in Đà Nẵng on a Monday."""
    return FixedClock(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc))


def _app(settings, verifier, clock):
    prepare(settings, demo=True)
    return create_app(settings, verifier=verifier, clock=clock)


@pytest.fixture
def app(settings, verifier, clock):
    app = _app(settings, verifier, clock)
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def officer(token):
    return token("officer", WARD, subject="officer-lan")


@pytest.fixture
def kiosk(token):
    return token("kiosk", WARD, subject="kiosk-sanh-1")


def issue(client, headers, service_code="A", priority="normal", ward=WARD, **extra):
    return client.post(f"{BASE}/wards/{ward}/tickets", json={"service_code": service_code, "priority": priority},
                       headers={**headers, **extra})


def call(client, headers, counter_id="quay-1", ward=WARD):
    return client.post(f"{BASE}/wards/{ward}/counters/{counter_id}/call-next", headers=headers)


def act(client, headers, ticket_id, action, **body):
    return client.post(f"{BASE}/tickets/{ticket_id}/actions", json={"action": action, **body}, headers=headers)


def call_and_serve(client, headers, counter_id="quay-1", ward=WARD):
    """Call the next ticket and close it at once: a counter calls its next ticket only
    after closing the one it called."""
    response = call(client, headers, counter_id, ward)
    if response.status_code == 200:
        assert act(client, headers, response.get_json()["ticket_id"], "serve").status_code == 200
    return response


def outbox_events(service_db, event_type):
    return [d["envelope"] for d in service_db("queue")[OUTBOX].find({"routing_key": event_type}).sort("seq", 1)]


# ---------------------------------------------------------------- reference data
def test_services_and_counters_are_public(client):
    services = client.get(f"{BASE}/wards/{WARD}/services").get_json()
    assert {"code": "A", "name": "Hộ tịch", "prefix": "A"} in services
    counters = client.get(f"{BASE}/wards/{WARD}/counters").get_json()
    assert [c["name"] for c in counters] == ["Quầy 1", "Quầy 2", "Quầy 3"]
    assert all(set(c) == {"counter_id", "name", "service_codes"} for c in counters)


@pytest.mark.parametrize("path", ["services", "counters", "board"])
def test_an_unknown_ward_is_404(client, path):
    response = client.get(f"{BASE}/wards/no-such-ward/{path}")
    assert response.status_code == 404
    assert response.get_json()["code"] == "ward_not_found"
    assert response.content_type == "application/problem+json"


def test_prepare_is_idempotent(settings, app, client):
    prepare(settings, demo=True)
    assert len(client.get(f"{BASE}/wards/{WARD}/counters").get_json()) == 3


# ---------------------------------------------------------------- who may take a ticket
def test_a_paired_kiosk_and_the_wards_staff_issue_tickets(client, kiosk, officer, token):
    assert issue(client, kiosk).status_code == 201
    assert issue(client, officer).status_code == 201
    assert issue(client, token("ward_admin", WARD)).status_code == 201


@pytest.mark.parametrize("role,ward", [("kiosk", OTHER_WARD), ("officer", OTHER_WARD), ("citizen", WARD),
                                       ("monitor", None)])
def test_others_may_not_issue(client, token, role, ward):
    response = issue(client, token(role, ward))
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_without_demo_a_kiosk_must_be_paired(client):
    response = issue(client, {})
    assert response.status_code == 401


def test_with_demo_an_unpaired_kiosk_issues(settings, verifier, clock, token):
    app = _app(replace(settings, demo=True), verifier, clock)
    try:
        demo = app.test_client()
        response = issue(demo, {})
        assert response.status_code == 201 and response.get_json()["number"] == "A001"
        # A token that is sent must still fit, demo or not.
        assert issue(demo, token("citizen", WARD)).status_code == 403
    finally:
        app.extensions["motcua"].db.client.close()


def test_a_token_that_must_change_its_password_is_refused(client, token):
    response = issue(client, token("officer", WARD, must_change_password=True))
    assert response.status_code == 403
    assert response.get_json()["code"] == "password_change_required"


@pytest.mark.parametrize("body,field", [({"service_code": "Z"}, "service_code"), ({}, "service_code"),
                                        ({"service_code": "A", "priority": "vip"}, "priority")])
def test_a_bad_ticket_request_is_422(client, kiosk, body, field):
    response = client.post(f"{BASE}/wards/{WARD}/tickets", json=body, headers=kiosk)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == [field]


def test_issuing_in_an_unknown_ward_is_404(client, token):
    assert issue(client, token("kiosk", "no-such-ward"), ward="no-such-ward").status_code == 404


# ---------------------------------------------------------------- numbers
def test_numbers_count_per_service_and_restart_each_local_day(client, kiosk, clock, service_db):
    numbers = [issue(client, kiosk, code).get_json()["number"] for code in ("A", "A", "B", "A", "D")]
    assert numbers == ["A001", "A002", "B001", "A003", "D001"]
    clock.at = datetime(2026, 3, 2, 16, 59, tzinfo=timezone.utc)  # 23:59 local, same day
    assert issue(client, kiosk, "A").get_json()["number"] == "A004"
    clock.advance(minutes=1)  # local midnight
    assert issue(client, kiosk, "A").get_json()["number"] == "A001"
    assert issue(client, kiosk, "B").get_json()["number"] == "B001"


def test_the_ticket_answer_has_the_contract_fields(client, kiosk, service_db):
    answer = issue(client, kiosk, "C").get_json()
    assert {"ticket_id", "number", "service_code", "issued_at", "waiting_ahead", "estimated_wait_minutes"} <= set(answer)
    assert answer["issued_at"] == "2026-03-02T02:00:00.000Z"
    assert (answer["waiting_ahead"], answer["estimated_wait_minutes"]) == (0, 0)
    [event] = outbox_events(service_db, "TicketIssued")
    assert event["payload"] == {"ticket_id": answer["ticket_id"], "number": "C001", "ward_id": WARD,
                                "service_code": "C", "priority": "normal"}
    assert event["ward_id"] == WARD and event["source"] == "queue"


def test_twenty_concurrent_kiosks_get_twenty_distinct_numbers(app, kiosk):
    answers, errors = [], []
    start = threading.Barrier(20)

    def take():
        c = app.test_client()
        start.wait()
        try:
            response = issue(c, kiosk, "B")
            assert response.status_code == 201, response.get_data(as_text=True)
            answers.append(response.get_json()["number"])
        except Exception as exc:  # reported below, a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(answers) == [f"B{i:03d}" for i in range(1, 21)]


# ---------------------------------------------------------------- waiting ahead, estimate
def test_waiting_ahead_respects_priority_and_the_estimate_learns(client, kiosk, officer, clock):
    first = issue(client, kiosk, "B").get_json()
    second = issue(client, kiosk, "B").get_json()
    # B is served at quay-1 and quay-2: 1 ahead × 5 min (no history) ÷ 2 counters = 2.5 -> 3.
    assert (second["waiting_ahead"], second["estimated_wait_minutes"]) == (1, 3)
    urgent = issue(client, kiosk, "B", priority="priority").get_json()
    assert urgent["waiting_ahead"] == 0
    normal = issue(client, kiosk, "B").get_json()
    assert normal["waiting_ahead"] == 3

    # Serve two tickets in 10 and 2 minutes: the mean becomes 6 minutes.
    served = []
    for minutes in (10, 2):
        called = call(client, officer, "quay-2").get_json()
        clock.advance(minutes=minutes)
        assert act(client, officer, called["ticket_id"], "serve").status_code == 200
        served.append(called["ticket_id"])
    assert served == [urgent["ticket_id"], first["ticket_id"]]
    later = issue(client, kiosk, "B").get_json()
    # Still waiting ahead: the second and the last normal ticket; 2 × 6 min ÷ 2 counters.
    assert (later["waiting_ahead"], later["estimated_wait_minutes"]) == (2, 6)


def test_waiting_ahead_at_issue_from_the_day_counts_matches_a_scan_of_the_queue(client, kiosk, officer):
    """The kiosk's answer comes from the service's day counts (issued and first called per
    rank); the ticket page still scans the queue. Through priority, calls, a transfer and
    a skip they must agree."""

    def issued(priority="normal") -> int:
        answer = issue(client, kiosk, "A", priority=priority).get_json()
        scanned = client.get(f"{BASE}/tickets/{answer['ticket_id']}").get_json()["waiting_ahead"]
        assert answer["waiting_ahead"] == scanned
        return answer["waiting_ahead"]

    assert [issued(), issued("priority"), issued(), issued()] == [0, 0, 2, 3]
    urgent = call(client, officer, "quay-1").get_json()
    assert act(client, officer, urgent["ticket_id"], "serve").status_code == 200
    first = call(client, officer, "quay-3").get_json()
    assert act(client, officer, first["ticket_id"], "transfer", counter_id="quay-2").status_code == 200
    assert issued() == 2              # the transferred ticket waits for quay-2, not in A's line
    assert issued("priority") == 0
    skipped = call(client, officer, "quay-1").get_json()
    assert act(client, officer, skipped["ticket_id"], "skip").status_code == 200
    assert issued() == 3              # the skipped ticket left the line too


# ---------------------------------------------------------------- calling
def test_priority_is_called_first_then_in_order_then_204(client, kiosk, officer, clock):
    a1 = issue(client, kiosk, "A").get_json()
    clock.advance(minutes=1)
    a2 = issue(client, kiosk, "A").get_json()
    clock.advance(minutes=1)
    p = issue(client, kiosk, "A", priority="priority").get_json()
    called = [call_and_serve(client, officer).get_json() for _ in range(3)]
    assert [c["number"] for c in called] == [p["number"], a1["number"], a2["number"]]
    assert called[0]["counter_id"] == "quay-1"
    assert called[0]["called_at"] == "2026-03-02T02:02:00.000Z"
    assert {"ticket_id", "number", "counter_id", "called_at"} <= set(called[0])
    empty = call(client, officer)
    assert empty.status_code == 204 and empty.get_data() == b""


def test_a_counter_calls_only_its_services_and_fairly_across_them(client, kiosk, officer, clock):
    issue(client, kiosk, "D")               # quay-1 does not serve D
    clock.advance(minutes=1)
    b = issue(client, kiosk, "B").get_json()
    clock.advance(minutes=1)
    issue(client, kiosk, "A")
    # quay-1 serves A and B: B has waited longer.
    assert call_and_serve(client, officer, "quay-1").get_json()["number"] == b["number"]
    assert call_and_serve(client, officer, "quay-1").get_json()["number"] == "A001"
    assert call(client, officer, "quay-1").status_code == 204


def test_yesterdays_tickets_are_not_called_today(client, kiosk, officer, clock):
    issue(client, kiosk, "A")
    clock.advance(days=1)
    assert call(client, officer).status_code == 204


def test_calling_needs_the_wards_staff_and_a_known_counter(client, token, kiosk):
    assert call(client, {}).status_code == 401
    assert call(client, kiosk).status_code == 403
    assert call(client, token("officer", OTHER_WARD)).status_code == 403
    response = call(client, token("officer", WARD), "quay-9")
    assert response.status_code == 404 and response.get_json()["code"] == "counter_not_found"


def test_two_counters_calling_at_once_never_share_a_ticket(app, kiosk, token):
    c = app.test_client()
    issued = {issue(c, kiosk, "A").get_json()["ticket_id"] for _ in range(12)}
    got: dict[str, list[str]] = {"quay-1": [], "quay-3": []}  # both serve A
    errors = []
    start = threading.Barrier(2)

    def counter(counter_id):
        mine, officer = app.test_client(), token("officer", WARD, subject=f"officer-at-{counter_id}")
        start.wait()
        try:
            while True:
                response = call_and_serve(mine, officer, counter_id)
                if response.status_code == 204:
                    return
                assert response.status_code == 200, response.get_data(as_text=True)
                got[counter_id].append(response.get_json()["ticket_id"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=counter, args=(cid,)) for cid in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    everything = got["quay-1"] + got["quay-3"]
    assert len(everything) == len(set(everything)) == 12
    assert set(everything) == issued


# ---------------------------------------------------------------- officer actions
@pytest.fixture
def called_ticket(client, kiosk, officer, clock):
    issued = issue(client, kiosk, "A").get_json()
    clock.advance(minutes=7)
    called = call(client, officer, "quay-1").get_json()
    assert called["ticket_id"] == issued["ticket_id"]
    return called


def test_serve_records_the_times_and_emits_ticket_served(client, officer, called_ticket, clock, service_db):
    clock.advance(minutes=4, seconds=30)
    response = act(client, officer, called_ticket["ticket_id"], "serve")
    assert response.status_code == 200
    assert response.get_json()["status"] == "served"
    [event] = outbox_events(service_db, "TicketServed")
    assert event["payload"] == {
        "ticket_id": called_ticket["ticket_id"], "ward_id": WARD, "counter_id": "quay-1",
        "officer_id": "officer-lan", "wait_seconds": 420, "service_seconds": 270,
        "service_code": "A", "number": "A001",
    }
    # Served is final.
    again = act(client, officer, called_ticket["ticket_id"], "serve")
    assert again.status_code == 409
    assert again.get_json()["code"] == "invalid_transition"
    assert again.get_json()["allowed_actions"] == []


def test_skip_closes_a_no_show(client, officer, called_ticket, service_db):
    assert act(client, officer, called_ticket["ticket_id"], "skip").get_json()["status"] == "skipped"
    assert outbox_events(service_db, "TicketServed") == []
    assert act(client, officer, called_ticket["ticket_id"], "recall").status_code == 409


def test_recall_announces_again(client, officer, called_ticket, clock, service_db):
    clock.advance(minutes=2)
    response = act(client, officer, called_ticket["ticket_id"], "recall")
    assert response.get_json()["status"] == "called"
    calls = outbox_events(service_db, "TicketCalled")
    assert [e["payload"]["called_at"] for e in calls] == ["2026-03-02T02:07:00Z", "2026-03-02T02:09:00Z"]
    board = client.get(f"{BASE}/wards/{WARD}/board").get_json()
    assert board["serving"][0]["called_at"] == "2026-03-02T02:09:00.000Z"
    # The wait counts from the first call, the service from the recall.
    clock.advance(minutes=1)
    act(client, officer, called_ticket["ticket_id"], "serve")
    [served] = outbox_events(service_db, "TicketServed")
    assert (served["payload"]["wait_seconds"], served["payload"]["service_seconds"]) == (420, 60)


def test_transfer_sends_the_ticket_to_another_counter_keeping_its_place(client, kiosk, officer, called_ticket, clock):
    clock.advance(minutes=1)
    issue(client, kiosk, "C")  # quay-2 serves C; this ticket came after the transferred one
    response = act(client, officer, called_ticket["ticket_id"], "transfer", counter_id="quay-2")
    assert response.status_code == 200
    assert response.get_json() == {"ticket_id": called_ticket["ticket_id"], "number": "A001",
                                   "status": "waiting", "transferred_to": "quay-2"}
    # quay-1 serves A, but the ticket now waits for quay-2 only.
    assert call(client, officer, "quay-1").status_code == 204
    # quay-2 does not serve A, yet calls the transferred ticket first: it was issued earlier.
    recalled = call_and_serve(client, officer, "quay-2").get_json()
    assert recalled["ticket_id"] == called_ticket["ticket_id"]
    assert call(client, officer, "quay-2").get_json()["number"] == "C001"


def test_the_transferred_ticket_keeps_its_first_call_for_the_wait(client, officer, called_ticket, clock, service_db):
    act(client, officer, called_ticket["ticket_id"], "transfer", counter_id="quay-3")
    clock.advance(minutes=5)
    call(client, officer, "quay-3")
    clock.advance(minutes=3)
    act(client, officer, called_ticket["ticket_id"], "serve")
    [served] = outbox_events(service_db, "TicketServed")
    assert served["payload"]["counter_id"] == "quay-3"
    assert (served["payload"]["wait_seconds"], served["payload"]["service_seconds"]) == (420, 180)


@pytest.mark.parametrize("body,field", [({"action": "dance"}, "action"), ({}, "action"),
                                        ({"action": "transfer"}, "counter_id"),
                                        ({"action": "transfer", "counter_id": "quay-9"}, "counter_id")])
def test_a_bad_action_is_422(client, officer, called_ticket, body, field):
    response = client.post(f"{BASE}/tickets/{called_ticket['ticket_id']}/actions", json=body, headers=officer)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == [field]


def test_an_officer_acting_on_a_stale_ticket_gets_409(app, client, officer, called_ticket):
    from motcua_queue.store import TicketChanged

    deps = app.extensions["motcua"]
    store = deps.store
    stale = store.ticket(called_ticket["ticket_id"])
    assert act(client, officer, called_ticket["ticket_id"], "skip").status_code == 200
    # Another officer's screen still shows it called: the write is refused, not applied.
    with pytest.raises(TicketChanged):
        tickets.apply_action(deps, stale, "serve", "officer-other")
    assert store.ticket(called_ticket["ticket_id"])["status"] == "skipped"


def test_a_waiting_ticket_cannot_be_served(client, kiosk, officer):
    waiting = issue(client, kiosk, "A").get_json()
    response = act(client, officer, waiting["ticket_id"], "serve")
    assert response.status_code == 409
    assert response.get_json()["ticket_status"] == "waiting"


def test_actions_need_an_officer_of_the_tickets_ward(client, token, kiosk, called_ticket):
    ticket_id = called_ticket["ticket_id"]
    assert act(client, {}, ticket_id, "serve").status_code == 401
    assert act(client, kiosk, ticket_id, "serve").status_code == 403
    assert act(client, token("officer", OTHER_WARD), ticket_id, "serve").status_code == 403
    missing = act(client, token("officer", WARD), str(uuid.uuid4()), "serve")
    assert missing.status_code == 404 and missing.get_json()["code"] == "ticket_not_found"


# ---------------------------------------------------------------- the board
def test_the_board_shows_each_counters_latest_call_and_the_waiting(client, kiosk, officer, clock):
    for code in ("A", "A", "B", "C", "C", "C"):
        issue(client, kiosk, code)
        clock.advance(seconds=10)
    clock.advance(minutes=1)
    board_first = call(client, officer, "quay-1").get_json()   # A001
    clock.advance(minutes=1)
    call(client, officer, "quay-2")   # B001 (B waited longer than C)
    clock.advance(minutes=1)
    act(client, officer, board_first["ticket_id"], "skip")
    call(client, officer, "quay-1")   # A002 after A001 was skipped
    board = client.get(f"{BASE}/wards/{WARD}/board").get_json()
    assert board["serving"] == [
        {"number": "A002", "counter_id": "quay-1", "called_at": "2026-03-02T02:04:00.000Z", "service_code": "A"},
        {"number": "B001", "counter_id": "quay-2", "called_at": "2026-03-02T02:03:00.000Z", "service_code": "B"},
    ]
    assert board["waiting"] == {"A": 0, "B": 0, "C": 3, "D": 0, "E": 0, "F": 0}
    # Another ward's board is its own.
    other = client.get(f"{BASE}/wards/{OTHER_WARD}/board").get_json()
    assert other["serving"] == [] and other["waiting"]["C"] == 0


# ---------------------------------------------------------------- idempotency
def test_the_same_idempotency_key_returns_the_first_ticket(client, kiosk, service_db):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = issue(client, kiosk, "A", **key)
    replay = issue(client, kiosk, "A", **key)
    assert first.status_code == replay.status_code == 201
    assert replay.get_json() == first.get_json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert service_db("queue").tickets.count_documents({}) == 1
    assert len(outbox_events(service_db, "TicketIssued")) == 1
    other_body = issue(client, kiosk, "B", **key)
    assert other_body.status_code == 422 and other_body.get_json()["code"] == "idempotency_key_reused"
    assert issue(client, kiosk, "A").get_json()["number"] == "A002"


# ---------------------------------------------------------------- metrics and openapi
def test_metrics_count_waiting_tickets_once_per_ward_and_service(client, kiosk, officer, clock):
    for code in ("A", "A", "C"):
        issue(client, kiosk, code)
    clock.advance(minutes=3)
    call(client, officer, "quay-1")
    text = client.get("/queue/metrics").get_data(as_text=True)
    families = [f for f in text_string_to_metric_families(text) if f.name == "motcua_queue_waiting_tickets"]
    assert len(families) == 1, "the gauge must appear once"
    waiting = {(s.labels["ward_id"], s.labels["service_code"]): s.value for s in families[0].samples}
    assert waiting[(WARD, "A")] == 1 and waiting[(WARD, "C")] == 1 and waiting[(WARD, "B")] == 0
    assert waiting[(OTHER_WARD, "A")] == 0
    [wait] = [f for f in text_string_to_metric_families(text) if f.name == "motcua_queue_wait_seconds"]
    counts = [s for s in wait.samples if s.name.endswith("_count") and s.labels["ward_id"] == WARD]
    assert counts and counts[0].value >= 1
    assert "motcua_outbox_pending" in text


def test_openapi_documents_every_route(app, client):
    spec = client.get("/queue/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(BASE) and not rule.rule.endswith("openapi.json"):
            path = rule.rule[len(BASE):].replace("<", "{").replace(">", "}")
            served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented


def test_health_and_readiness(client):
    assert client.get("/queue/healthz").status_code == 200
    assert client.get("/queue/readyz").get_json()["checks"]["database"] is True
