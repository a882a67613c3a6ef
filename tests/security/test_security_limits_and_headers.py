"""Rate limits where strangers can guess, and the security headers on pages and APIs."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from motcua_identity import api as identity_api
from motcua_identity.api import create_app as identity_app

WARD = "dn-hai-chau"
# Tomorrow, mid-window: no roll-over during the test. Never a fixed past date: the limit
# counters expire by a TTL index relative to it and would vanish mid-test.
NOON = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=5, minute=0, second=30, microsecond=0)


def test_login_is_limited_per_username_then_per_address(apps, settings, signing_key, verifier):
    from dataclasses import replace

    client = identity_app(replace(settings, demo=False), verifier=verifier, signing_key=signing_key,
                          clock=lambda: NOON, send_reply=lambda *a: None, dossier_status=lambda *a: None).test_client()

    def attempt(username):
        return client.post("/identity/api/v1/sessions", json={"username": username, "password": "doan-mo-123"})

    from motcua_identity.domain import MAX_FAILED_LOGINS

    answers = [attempt("0905999888").status_code for _ in range(identity_api.LOGINS_PER_USERNAME + 1)]
    # An unknown username is answered as a known one would be: wrong, then locked for this
    # address after the same number of tries (nobody learns whether it exists) — then the
    # per-username rate limit.
    assert answers[:MAX_FAILED_LOGINS - 1] == [401] * (MAX_FAILED_LOGINS - 1)
    assert set(answers[MAX_FAILED_LOGINS - 1:-1]) == {423} and answers[-1] == 429
    refused = attempt("0905999888")
    assert refused.get_json()["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    # Spraying many usernames from one address meets the per-address limit.
    statuses = [attempt(f"09050{n:05d}").status_code for n in range(identity_api.LOGINS_PER_CLIENT)]
    assert 429 in statuses and statuses.index(429) <= identity_api.LOGINS_PER_CLIENT


def test_inbound_sms_is_limited_per_phone_without_costing_replies(clients, replies):
    from motcua_identity.api import SMS_PER_PHONE

    headers = {"X-Gateway-Token": "gateway-secret-for-tests"}
    outcomes = [clients["identity"].post("/identity/api/v1/sms/inbound", headers=headers,
                                         json={"from": "0905111222", "text": f"TT HS-{n:06d}", "id": f"m{n}"})
                for n in range(SMS_PER_PHONE + 3)]
    assert all(o.status_code == 200 for o in outcomes)
    limited = [o.get_json() for o in outcomes if o.get_json().get("outcome") == "rate_limited"]
    assert len(limited) == 3
    assert len(replies.sent) <= SMS_PER_PHONE  # a flood past the limit sends nothing


def test_public_lookup_is_limited_per_address(clients):
    from motcua_dossier.api import LOOKUPS_PER_WINDOW

    statuses = [clients["dossier"].get("/dossier/api/v1/lookup",
                                       query_string={"receipt_code": f"HS-{n}", "phone_last4": "1234"}).status_code
                for n in range(2 * LOOKUPS_PER_WINDOW + 2)]
    # Fixed one-minute windows: 2L+2 requests put more than L into one window even when
    # they straddle a window's end.
    assert statuses[0] in (404, 422, 429) and 429 in statuses


def _assert_common_headers(response):
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_pages_carry_a_nonce_policy_that_covers_every_inline_script(clients):
    pages = [("queue", f"/queue/kiosk/{WARD}"), ("queue", f"/queue/board/{WARD}"),
             ("rating", f"/rating/rate/{WARD}/" + clients["queue"].get(
                 f"/queue/api/v1/wards/{WARD}/counters").get_json()[0]["counter_id"])]
    nonces = set()
    for service, path in pages:
        response = clients[service].get(path)
        assert response.status_code == 200, path
        _assert_common_headers(response)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self' 'nonce-" in policy and "unsafe-inline" not in policy and "object-src 'none'" in policy
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        nonces.add(nonce)
        html = response.get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" in tag or 'type="application/json"' in tag:
                continue
            assert f'nonce="{nonce}"' in tag, f"{path}: an inline script the policy would block: {tag}"
    assert len(nonces) == len(pages), "a nonce is used once"


def test_apis_are_neither_framed_nor_sniffed(clients):
    for service in ("identity", "dossier", "queue", "notify", "rating"):
        for path in (f"/{service}/api/v1/openapi.json", f"/{service}/healthz", f"/{service}/api/v1/no-such-thing"):
            response = clients[service].get(path)
            _assert_common_headers(response)
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
