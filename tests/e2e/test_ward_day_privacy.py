"""What the platform keeps about a citizen where it should not: after a citizen registers,
fails a login, signs in, submits a dossier and gets its SMS, nothing in any service's outbox
(the events, which travel to every consumer and to the edge offices), in the platform's log
or in its trace spans carries the citizen's national id, phone number, date of birth or
password, in any spelling. Events name a citizen by an opaque id only (CONTRACT.md)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from bson import json_util
from pymongo import MongoClient

from motcua_testing.fixtures import wait_for

from motcua_common.phones import normalise_phone

from motcua_testing.phones import verify_phone
from .test_ward_day import fill_form

pytestmark = pytest.mark.e2e
WARD = "dn-hai-chau"
NATIONAL_ID = "048195123457"   # Đà Nẵng (048), a woman born in the 1900s (1), in 1995
BORN = "1995-05-17"
PHONE = "0938 512 764"
PASSWORD = "mat-khau-rieng-tu-95"


def spellings() -> dict[str, re.Pattern]:
    digits = PHONE.replace(" ", "")
    return {
        "national id": re.compile(NATIONAL_ID),
        "phone": re.compile(rf"(?:\+?84[ .-]?|0){digits[1:4]}[ .-]?{digits[4:7]}[ .-]?{digits[7:]}"),
        "date of birth": re.compile(BORN + "|" + "/".join(reversed(BORN.split("-")))),
        "password": re.compile(re.escape(PASSWORD)),
    }


def embedded_database_url(data_dir: Path) -> str:
    """The port of the database `motcua up` started for this data directory."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"secantus" in b" ".join(argv) and str(data_dir / "db").encode() in argv:
            port = argv[argv.index(b"--port") + 1].decode()
            return f"mongodb://127.0.0.1:{port}/?directConnection=true"
    pytest.fail(f"no embedded database found for {data_dir}")


def leaks(text: str) -> list[str]:
    return [what for what, pattern in spellings().items() if pattern.search(text)]


def test_no_personal_id_or_secret_in_events_logs_or_traces(platform, gateway):
    base = platform["base"]
    registered = requests.post(f"{base}/identity/api/v1/citizens", timeout=30, json={
        "national_id": NATIONAL_ID, "full_name": "Lê Thị Riêng", "date_of_birth": BORN, "phone": PHONE,
        "ward_id": WARD, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    citizen_id = registered.json()["citizen_id"]
    verify_phone(base, gateway, registered, normalise_phone(PHONE))
    wrong = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                          json={"username": NATIONAL_ID, "password": PASSWORD + "-sai"})
    assert wrong.status_code == 401
    session = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                            json={"username": NATIONAL_ID, "password": PASSWORD})
    assert session.status_code == 200, session.text
    citizen = {"Authorization": f"Bearer {session.json()['access_token']}"}
    procedures = requests.get(f"{base}/dossier/api/v1/procedures", timeout=30).json()
    procedure = next(p for p in procedures if p["level"] >= 3)
    dossier = requests.post(f"{base}/dossier/api/v1/dossiers", headers=citizen, timeout=30,
                            json={"procedure_code": procedure["code"], "ward_id": WARD, "form": fill_form(procedure)})
    assert dossier.status_code == 201, dossier.text
    receipt = dossier.json()["receipt_code"]
    # The SMS went out: every service on the way (outboxes, relays, consumers, notify) handled it.
    assert wait_for(lambda: [m for m in gateway.accepted() if receipt in m["body"].get("text", "")], timeout=60)

    client = MongoClient(embedded_database_url(Path(platform["data_dir"])))
    try:
        envelopes = [doc for name in client.list_database_names() if "outbox" in client[name].list_collection_names()
                     for doc in client[name].outbox.find()]
    finally:
        client.close()
    outbox = json_util.dumps(envelopes)
    # Not vacuous: the citizen's own events are there, under the opaque id.
    mine = [e for e in envelopes if citizen_id in json.dumps(e["envelope"], default=str)]
    assert {e["envelope"]["type"] for e in mine} >= {"CitizenRegistered", "DossierSubmitted"}
    assert leaks(outbox) == [], "personal data in an event"

    log = Path(platform["log"]).read_text(encoding="utf-8", errors="replace")
    assert "sms sent" in log and len(log) > 1000  # the day was logged: the scan below reads something
    assert leaks(log) == [], [line for line in log.splitlines() if leaks(line)][:3]

    traces = Path(platform["data_dir"]) / "traces.jsonl"
    if traces.exists():
        spans = traces.read_text(encoding="utf-8", errors="replace")
        assert leaks(spans) == [], "personal data in a trace span"
