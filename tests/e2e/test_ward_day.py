"""A ward's day, end to end, through HTTP only, against `motcua up --demo` started as a
subprocess on the real RabbitMQ (its own vhost) and the embedded database.

register -> log in -> submit a dossier -> SMS at a local recording gateway -> officer
moves it to returned -> ticket issued, called, served -> rated -> stats reflect it all.
Then: killing the relay, and restarting the broker, lose no event."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from motcua_common import demo
from motcua_testing.fixtures import wait_for
from motcua_testing.forms import fill_form

from motcua_testing.phones import verify_phone
from motcua_testing.rabbitcli import rabbitmqctl

pytestmark = pytest.mark.e2e
WARD = "dn-hai-chau"
PHONE = "0935 246 810"


def call(method, url, **kwargs):
    response = requests.request(method, url, timeout=30, **kwargs)
    return response


def login(base, username, password):
    response = call("POST", f"{base}/identity/api/v1/sessions", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def sms_for(gateway, text_part: str):
    return [m for m in gateway.accepted() if text_part in m["body"].get("text", "")]


def submit_online(base, citizen, procedure):
    response = call("POST", f"{base}/dossier/api/v1/dossiers", headers=citizen,
                    json={"procedure_code": procedure["code"], "ward_id": WARD, "form": fill_form(procedure)})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_ward_day_end_to_end(platform, gateway):
    base = platform["base"]

    # the front door names every demo ward's pages, and they answer
    front = call("GET", f"{base}/").text
    for page in (f"/queue/kiosk/{WARD}", f"/queue/board/{WARD}", f"/rating/rate/{WARD}/quay-1"):
        assert page in front and call("GET", f"{base}{page}").status_code == 200

    # the reference data of --demo
    wards = call("GET", f"{base}/identity/api/v1/wards").json()
    assert {WARD, "hn-ba-dinh"} <= {w["ward_id"] for w in wards}
    procedures = call("GET", f"{base}/dossier/api/v1/procedures").json()
    assert len(procedures) >= 10
    online = next(p for p in procedures if p["level"] >= 3)

    # a citizen registers on the web and logs in
    registered = call("POST", f"{base}/identity/api/v1/citizens", json={
        "national_id": "048092004321", "full_name": "Trần Thị Thu", "date_of_birth": "1992-03-08",
        "phone": PHONE, "ward_id": WARD, "password": "thu-hai-chau-92"})
    assert registered.status_code == 201, registered.text
    verify_phone(base, gateway, registered, "+84935246810")
    citizen = login(base, "048092004321", "thu-hai-chau-92")

    # submits a dossier online
    dossier = submit_online(base, citizen, online)
    assert dossier["status"] == "submitted" and dossier["channel"] == "online"
    receipt = dossier["receipt_code"]

    # the SMS reaches the gateway, once, to the registered phone
    sent = wait_for(lambda: sms_for(gateway, receipt), timeout=60, message="the 'submitted' SMS")
    assert sent[0]["body"]["to"] == "+84935246810"
    assert sent[0]["idempotency_key"] == sent[0]["body"]["id"]
    assert sent[0]["body"]["encoding"] in ("gsm7", "ucs2") and sent[0]["body"]["segments"] >= 1

    # an officer of the ward moves it to returned
    officer = login(base, "canbo.haichau", demo.DEMO_STAFF_PASSWORD)
    actions = f"{base}/dossier/api/v1/dossiers/{dossier['dossier_id']}/actions"
    leader = login(base, "lanhdao.haichau", demo.DEMO_STAFF_PASSWORD)
    for action in ("receive", "start_processing"):
        moved = call("POST", actions, headers=officer, json={"action": action})
        assert moved.status_code == 200, moved.text
    only_leaders = call("POST", actions, headers=officer, json={"action": "approve"})
    assert only_leaders.status_code == 403 and only_leaders.json()["code"] == "leader_only"
    for action, status in [("approve", "result_ready"), ("return", "returned")]:
        response = call("POST", actions, headers=leader if action == "approve" else officer,
                        json={"action": action, "note": "e2e"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    again = call("POST", actions, headers=officer, json={"action": "receive"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    other_ward = login(base, "canbo.badinh", demo.DEMO_STAFF_PASSWORD)
    assert call("POST", actions, headers=other_ward, json={"action": "reject"}).status_code == 403

    # public lookup: right code and digits, and the same 404 for any mismatch
    lookup = call("GET", f"{base}/dossier/api/v1/lookup", params={"receipt_code": receipt, "phone_last4": "6810"})
    assert lookup.status_code == 200, lookup.text
    assert lookup.json()["status"] == "returned"
    assert [h["status"] for h in lookup.json()["history"]][-1] == "returned"
    wrong_digits = call("GET", f"{base}/dossier/api/v1/lookup", params={"receipt_code": receipt, "phone_last4": "0000"})
    wrong_code = call("GET", f"{base}/dossier/api/v1/lookup", params={"receipt_code": "XX-000000-AAAA", "phone_last4": "6810"})
    assert wrong_digits.status_code == wrong_code.status_code == 404
    assert wrong_digits.json()["code"] == wrong_code.json()["code"] == "not_found"

    # the office floor: a ticket is issued at the kiosk, called, served and rated
    services = call("GET", f"{base}/queue/api/v1/wards/{WARD}/services").json()
    counters = call("GET", f"{base}/queue/api/v1/wards/{WARD}/counters").json()
    service = services[0]
    counter = next(c for c in counters if service["code"] in c["service_codes"])
    ticket = call("POST", f"{base}/queue/api/v1/wards/{WARD}/tickets", json={"service_code": service["code"], "priority": "normal"})
    assert ticket.status_code == 201, ticket.text
    ticket = ticket.json()
    assert ticket["number"] == f"{service['prefix']}001"
    called = call("POST", f"{base}/queue/api/v1/wards/{WARD}/counters/{counter['counter_id']}/call-next", headers=officer)
    assert called.status_code == 200, called.text
    assert called.json()["ticket_id"] == ticket["ticket_id"]
    board = call("GET", f"{base}/queue/api/v1/wards/{WARD}/board").json()
    assert any(s["number"] == ticket["number"] for s in board["serving"])
    served = call("POST", f"{base}/queue/api/v1/tickets/{ticket['ticket_id']}/actions", headers=officer, json={"action": "serve"})
    assert served.status_code == 200 and served.json()["status"] == "served"
    assert call("POST", f"{base}/queue/api/v1/wards/{WARD}/counters/{counter['counter_id']}/call-next", headers=officer).status_code == 204

    def rate():
        response = call("POST", f"{base}/rating/api/v1/ratings", json={"ticket_id": ticket["ticket_id"], "score": "very_satisfied"})
        return response if response.status_code != 404 else None

    rated = wait_for(rate, timeout=60, message="the ticket to become ratable")
    assert rated.status_code == 201, rated.text
    twice = call("POST", f"{base}/rating/api/v1/ratings", json={"ticket_id": ticket["ticket_id"], "score": "satisfied"})
    assert twice.status_code == 409 and twice.json()["code"] == "already_rated"
    dossier_rating = wait_for(lambda: (lambda r: r if r.status_code != 404 else None)(
        call("POST", f"{base}/rating/api/v1/ratings", json={"receipt_code": receipt, "score": "satisfied"})),
        timeout=60, message="the returned dossier to become ratable")
    assert dossier_rating.status_code == 201, dossier_rating.text

    # notifications: submitted, received and result ready, each exactly once
    wait_for(lambda: len([m for m in gateway.accepted() if receipt in m["body"]["text"]]) >= 3, timeout=60,
             message="received and result-ready SMS")
    time.sleep(2)
    texts = [m["body"]["id"] for m in gateway.accepted() if receipt in m["body"]["text"]]
    assert len(texts) == len(set(texts)) == 3

    # the ward's numbers reflect all of it
    stats = call("GET", f"{base}/dossier/api/v1/wards/{WARD}/stats", headers=officer).json()
    assert stats["submitted"] >= 1 and stats["online"] >= 1 and stats["returned"] == 1
    assert stats["returned_on_time"] == 1 and stats["on_time_rate"] == 1.0
    ratings = call("GET", f"{base}/rating/api/v1/wards/{WARD}/stats", headers=officer).json()
    assert ratings["total"] == 2 and ratings["very_satisfied"] == 1 and ratings["satisfied"] == 1
    notifications = call("GET", f"{base}/notify/api/v1/notifications", params={"ward_id": WARD}, headers=officer).json()
    assert len([n for n in notifications if n["status"] == "sent"]) >= 3
    metrics = call("GET", f"{base}/dossier/metrics").text
    assert f'motcua_dossiers_submitted_total{{channel="online",ward_id="{WARD}"}}' in metrics
    for svc in ("identity", "dossier", "queue", "notify", "rating"):
        assert call("GET", f"{base}/{svc}/readyz").status_code == 200
        assert call("GET", f"{base}/{svc}/api/v1/openapi.json").json()["openapi"].startswith("3.")


def _children(parent_pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent_pid:
                found[int(entry.name)] = (entry / "cmdline").read_text().replace("\0", " ")
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_killing_the_relay_loses_no_event(platform, gateway):
    base = platform["base"]
    citizen = login(base, "048092004321", "thu-hai-chau-92")
    relay_pid = next(pid for pid, cmd in _children(platform["proc"].pid).items() if "relay --service dossier" in cmd)
    os.kill(relay_pid, signal.SIGKILL)
    procedure = next(p for p in call("GET", f"{base}/dossier/api/v1/procedures").json() if p["level"] >= 3)
    dossier = submit_online(base, citizen, procedure)  # accepted while no relay runs: the event waits
    wait_for(lambda: sms_for(gateway, dossier["receipt_code"]), timeout=90, message="the SMS after the relay restarted")
    assert any("relay --service dossier" in cmd for cmd in _children(platform["proc"].pid).values())


def test_restarting_the_broker_loses_no_event(platform, gateway):
    base = platform["base"]
    citizen = login(base, "048092004321", "thu-hai-chau-92")
    procedure = next(p for p in call("GET", f"{base}/dossier/api/v1/procedures").json() if p["level"] >= 3)
    rabbitmqctl("-q", "stop_app", timeout=120)
    try:
        dossier = submit_online(base, citizen, procedure)  # the write succeeds; its event waits in the outbox
    finally:
        rabbitmqctl("-q", "start_app", timeout=120)
    wait_for(lambda: sms_for(gateway, dossier["receipt_code"]), timeout=150, message="the SMS after the broker came back")
