"""One trace from a citizen's dossier submission to its SMS, through the real platform: the
dossier API's request, the relay publishing the event from the outbox, notify's consumer
storing the notification and notify's sender handing it to the gateway. Every process of
`motcua up` writes its finished spans to the trace file the fixture sets."""
from __future__ import annotations

import json

import pytest

from motcua_testing.fixtures import wait_for

from motcua_testing.phones import verify_phone
from .test_ward_day import call, login, sms_for, submit_online

pytestmark = pytest.mark.e2e


def read_spans(platform) -> list[dict]:
    path = platform["data_dir"] / "traces.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_one_trace_spans_a_submission_through_to_its_sms(platform, gateway):
    base = platform["base"]
    registered = call("POST", f"{base}/identity/api/v1/citizens", json={
        "national_id": "048093005566", "full_name": "Lê Văn Tám", "date_of_birth": "1993-05-06",
        "phone": "0935 111 222", "ward_id": "dn-hai-chau", "password": "tam-hai-chau-93"})
    assert registered.status_code == 201, registered.text
    verify_phone(base, gateway, registered, "+84935111222")
    citizen = login(base, "048093005566", "tam-hai-chau-93")
    procedure = next(p for p in call("GET", f"{base}/dossier/api/v1/procedures").json() if p["level"] >= 3)
    dossier = submit_online(base, citizen, procedure)
    sms = wait_for(lambda: sms_for(gateway, dossier["receipt_code"]), timeout=60, message="the 'submitted' SMS")[0]
    notification_id = sms["body"]["id"]

    def send_span():
        return [s for s in read_spans(platform)
                if s["name"] == "sms send" and s["attributes"].get("motcua.notification_id") == notification_id]

    send = wait_for(send_span, timeout=30, message="the SMS send span")[0]
    trace = {s["span_id"]: s for s in read_spans(platform) if s["trace_id"] == send["trace_id"]}

    # sms send (notify worker) <- the event consumed (notify worker) <- the HTTP request (API)
    assert send["kind"] == "CLIENT" and send["service"] == "motcua-notify" and send["role"] == "worker"
    assert send["attributes"]["motcua.outcome"] == "accepted" and send["status"] != "ERROR"
    consumed = trace[send["parent_span_id"]]
    assert consumed["name"] == "DossierSubmitted process" and consumed["kind"] == "CONSUMER"
    assert consumed["service"] == "motcua-notify"
    assert consumed["attributes"]["messaging.destination.name"] == "notify.dossier.DossierSubmitted"
    request = trace[consumed["parent_span_id"]]
    assert request["kind"] == "SERVER" and request["parent_span_id"] is None
    assert request["name"] == "POST /dossier/api/v1/dossiers" and request["attributes"]["motcua.service"] == "dossier"
    status = request["attributes"].get("http.response.status_code", request["attributes"].get("http.status_code"))
    assert status == 201

    # the relay's publish, from the outbox to the broker's confirm, in the same trace
    published = [s for s in trace.values() if s["kind"] == "PRODUCER"
                 and s["attributes"].get("motcua.event_type") == "DossierSubmitted"]
    assert len(published) == 1
    assert published[0]["service"] == "motcua-dossier" and published[0]["role"] == "relay"
    assert published[0]["parent_span_id"] == request["span_id"]
    # the request's database writes are its children; no span holds a phone or a national id
    assert any(s["kind"] == "CLIENT" and s["parent_span_id"] == request["span_id"] and s["name"] != "sms send"
               for s in trace.values())
    text = json.dumps(list(trace.values()), ensure_ascii=False)
    assert "048093005566" not in text and "935111222" not in text and "0935 111 222" not in text
