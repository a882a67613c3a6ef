"""Officers sign in at their ward office with the WAN link up or down (office_gate.py):
a stand-in for the centre's identity that can be cut off, the office's real database."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests
from argon2 import PasswordHasher, profiles
from flask import Flask, request
from werkzeug.serving import make_server

from motcua_common.auth import SigningKey, TokenVerifier
from motcua_common.mongo import connect, service_database
from motcua_common.revocations import RevocationList, record_event
from motcua_platform.office_gate import CREDENTIALS, FAILED_LIMIT, CentreLookups, OfficeGate, gate_app

WARD = "tn-song-cong"
ACCOUNTS = {  # username -> (password, subject, role, ward)
    "canbo.songcong": ("mat-khau-quay-1", "o-1", "officer", WARD),
    "canbo.badinh": ("mat-khau-ba-dinh", "o-2", "officer", "hn-ba-dinh"),
    "048090001234": ("mat-khau-cong-dan", "c-1", "citizen", WARD),
}


class Centre:
    """The central identity, as far as the office sees it; `up = False` cuts the link."""

    def __init__(self, key: SigningKey):
        self.key, self.up, self.calls = key, True, 0
        app = Flask("centre")

        @app.post("/identity/api/v1/sessions")
        def sessions():
            self.calls += 1
            if not self.up:
                return {"code": "unavailable"}, 503
            body = request.get_json()
            account = ACCOUNTS.get(body["username"])
            if account is None or account[0] != body["password"]:
                return {"code": "invalid_credentials"}, 401
            _, subject, role, ward = account
            return {"access_token": key.issue(subject, role, ward, 3600), "token_type": "Bearer", "expires_in": 3600,
                    "must_change_password": False, "role": role, "ward_id": ward}

        @app.get("/identity/.well-known/jwks.json")
        def jwks():
            return key.jwks() if self.up else ({"code": "unavailable"}, 503)

        @app.get("/dossier/api/v1/procedures")
        def procedures():
            return [{"code": "HT-KS", "name": "Đăng ký khai sinh"}] if self.up else ({"code": "unavailable"}, 503)

        @app.get("/dossier/api/v1/lookup")
        def lookup():
            if request.args.get("receipt_code") == "TN-261206-AB12C" and request.args.get("phone_last4") == "6810":
                return {"receipt_code": "TN-261206-AB12C", "status": "received"}
            return {"code": "not_found"}, 404

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def office(settings, tmp_path):
    centre = Centre(SigningKey.load_or_create(tmp_path / "centre.pem"))
    gate = OfficeGate(settings, WARD, centre.url, tmp_path / "jwks-cache.json",
                      hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    client = gate_app(gate, CentreLookups(centre.url, tmp_path / "catalog-cache.json")).test_client()
    yield centre, gate, client
    centre.server.shutdown()


def sign_in(client, username, password=None):
    return client.post("/identity/api/v1/sessions",
                       json={"username": username, "password": password or ACCOUNTS[username][0]})


def test_with_the_link_up_the_centre_answers_and_the_office_learns_its_own_officers(office):
    centre, gate, client = office
    answer = sign_in(client, "canbo.songcong")
    assert answer.status_code == 200 and centre.calls == 1
    kept = gate.db[CREDENTIALS].find_one({"_id": "canbo.songcong"})
    assert kept["subject"] == "o-1" and kept["role"] == "officer"
    assert ACCOUNTS["canbo.songcong"][0] not in str(kept), "a hash of the password, never the password"
    for other in ("canbo.badinh", "048090001234"):  # another ward's officer, a citizen: passed through only
        assert sign_in(client, other).status_code == 200
        assert gate.db[CREDENTIALS].find_one({"_id": other}) is None
    wrong = sign_in(client, "canbo.songcong", "doan-bua")
    assert wrong.status_code == 401 and wrong.get_json()["code"] == "invalid_credentials"
    assert gate.db[CREDENTIALS].find_one({"_id": "canbo.songcong"}) is None, "the centre said no: forgotten"


def test_with_the_link_down_an_officer_signs_in_for_a_working_day(office):
    centre, gate, client = office
    assert sign_in(client, "canbo.songcong").status_code == 200
    gate.jwks()  # the office keeps the centre's keys while it can
    centre.up = False
    answer = sign_in(client, "canbo.songcong")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["issued_by"] == "office" and body["ward_id"] == WARD and body["expires_in"] >= 8 * 3600
    verifier = TokenVerifier(gate.jwks)
    principal = verifier.verify(body["access_token"])
    assert (principal.subject, principal.role, principal.ward_id) == ("o-1", "officer", WARD)
    # The centre's own tokens still verify at the office while it is cut off.
    assert {k["kid"] for k in gate.jwks()["keys"]} == {centre.key.kid, gate.key.kid}

    refused = sign_in(client, "canbo.songcong", "doan-bua")
    assert refused.status_code == 401 and refused.get_json()["code"] == "invalid_credentials"
    never_here = sign_in(client, "canbo.badinh")
    assert never_here.status_code == 503 and never_here.get_json()["code"] == "centre_unreachable"
    for _ in range(FAILED_LIMIT):
        sign_in(client, "canbo.songcong", "doan-bua")
    assert sign_in(client, "canbo.songcong").status_code == 423, "guessing offline is limited too"


def test_a_revocation_that_reaches_the_office_ends_office_tokens_and_offline_sign_in(office, settings):
    centre, gate, client = office
    assert sign_in(client, "canbo.songcong").status_code == 200
    centre.up = False
    token = sign_in(client, "canbo.songcong").get_json()["access_token"]
    principal = TokenVerifier(gate.jwks).verify(token)
    queue_db = service_database(connect(settings), settings, "queue")
    revocations = RevocationList(queue_db, cache_seconds=0)
    assert not revocations.is_revoked("o-1", principal.issued_at)
    # Deactivated at the centre an hour ago; the event reaches the office when the link returns.
    earlier = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    record_event(queue_db, {"account_id": "o-1", "ward_id": WARD, "revoked_before": earlier,
                            "reason": "officer_deactivated"})
    assert revocations.is_revoked("o-1", principal.issued_at), "the office token issued meanwhile is refused"
    assert sign_in(client, "canbo.songcong").status_code == 401
    assert gate.db[CREDENTIALS].find_one({"_id": "canbo.songcong"}) is None


def test_the_kiosks_lookups_at_the_office(office):
    """The office runs no dossier service: the kiosk's catalog and dossier lookups go to the
    centre; cut off, the catalog comes from the copy kept at the office and a dossier lookup
    says plainly that it cannot be done now."""
    centre, _, client = office
    assert client.get("/dossier/api/v1/procedures").get_json()[0]["code"] == "HT-KS"
    found = client.get("/dossier/api/v1/lookup?receipt_code=TN-261206-AB12C&phone_last4=6810")
    assert found.status_code == 200 and found.get_json()["status"] == "received"
    assert client.get("/dossier/api/v1/lookup?receipt_code=X&phone_last4=0000").status_code == 404
    centre.up = False
    centre.server.shutdown()  # the link is cut: nothing answers at all
    kept = client.get("/dossier/api/v1/procedures")
    assert kept.status_code == 200 and kept.get_json()[0]["code"] == "HT-KS" and kept.headers["X-Motcua-Kept-At"]
    cut = client.get("/dossier/api/v1/lookup?receipt_code=TN-261206-AB12C&phone_last4=6810")
    assert cut.status_code == 503 and cut.get_json()["code"] == "centre_unreachable"
    assert "mất kết nối" in cut.get_json()["detail"]
